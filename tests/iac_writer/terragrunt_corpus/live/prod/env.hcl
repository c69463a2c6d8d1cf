locals {
  environment   = "prod"
  aws_region    = "eu-west-1"
  instance_type = "m6i.large"
  web_min       = 6
}
