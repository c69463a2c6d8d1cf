locals {
  account_name   = "acme-prod"
  aws_account_id = "123456789012"
}
