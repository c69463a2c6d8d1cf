# ---------------------------------------------------------------------------------------------
# prod / app: the web tier behind the ALB. forescale manages capacity.web.min_size.
# ---------------------------------------------------------------------------------------------

include "root" {
  path   = find_in_parent_folders("root.hcl")
  expose = true
}

include "envcommon" {
  path           = "${dirname(find_in_parent_folders("root.hcl"))}/_envcommon/app.hcl"
  merge_strategy = "deep"
}

terraform {
  source = "git::https://git.example.com/infra/modules.git//asg-alb-service?ref=v1.9.2"
}

dependency "vpc" {
  config_path = "../vpc"

  mock_outputs = {
    vpc_id          = "vpc-00000000"
    private_subnets = ["subnet-00000000"]
    min_size        = 99 # blocks are never read for the value
  }
  mock_outputs_allowed_terraform_commands = ["validate", "plan"]
}

locals {
  env_vars = read_terragrunt_config(find_in_parent_folders("env.hcl"))
  env      = local.env_vars.locals.environment
  base_max = 10
}

generate "scaling" {
  path      = "scaling_override.tf"
  if_exists = "overwrite_terragrunt"
  contents  = <<EOF
# inputs = { capacity = { web = { min_size = 1 } } }
locals { min_size = 99 }
EOF
}

inputs = {
  name       = "app-${local.env}"
  vpc_id     = dependency.vpc.outputs.vpc_id
  subnet_ids = dependency.vpc.outputs.private_subnets

  # Managed by forescale: only the number's characters change.
  capacity = {
    web = {
      min_size         = 4 # raised before the evening peak
      max_size         = local.base_max * 2 // twice the base
      desired_capacity = max(4, local.env_vars.locals.web_min)
    }
    worker = { min_size = 2, max_size = 8 } // one line
    /* api = { min_size = 50 } */
    "api" : {
      "min_size" : 3
    }
  }

  instance_type      = local.env_vars.locals.instance_type
  health_check_grace = 300
  user_data          = <<-EOT
    #!/bin/bash
    echo "min_size = 99" > /etc/app.conf
  EOT
  tags               = merge(include.root.locals.tags, { Service = "app" })
}
