# Common configuration of the app unit in every environment (merged in by include "envcommon").
locals {
  env_vars        = read_terragrunt_config(find_in_parent_folders("env.hcl"))
  env             = local.env_vars.locals.environment
  base_source_url = "git::https://git.example.com/infra/modules.git//asg-alb-service"
}

terraform {
  source = "${local.base_source_url}?ref=v1.8.0"
}

inputs = {
  name          = "app-${local.env}"
  instance_type = "t3.small"

  capacity = {
    web = {
      min_size = 2
      max_size = 4
    }
    batch = { min_size = 1 }
  }
}
