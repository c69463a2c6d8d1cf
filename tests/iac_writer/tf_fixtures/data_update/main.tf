# Test module: the capacity variable feeds terraform_data.input, which Terraform updates
# in place (like an autoscaling group's min_size). terraform_data is built into
# Terraform >= 1.4, so no provider is downloaded.
terraform {
  required_version = ">= 1.4"
}

variable "web_capacity" {
  description = "Desired web capacity (replicas)."
  type        = number
}

resource "terraform_data" "web_asg" {
  input = var.web_capacity
}

output "web_capacity" {
  value = terraform_data.web_asg.output
}
