# A stand-in for an autoscaling group: terraform_data (built in, no provider to download)
# carries the capacity so `terraform plan` shows what forescale changes.
terraform {
  required_version = ">= 1.4"
}

resource "terraform_data" "web_asg" {
  input = {
    min_size      = var.capacity["web"].min_size
    max_size      = var.capacity["web"].max_size
    instance_type = var.instance_type
    region        = var.region
  }
}

resource "terraform_data" "worker_asg" {
  input = {
    min_size = var.capacity["worker"].min_size
    max_size = var.capacity["worker"].max_size
  }
}
