include "root" {
  path = find_in_parent_folders("root.hcl")
}

locals {
  common = read_terragrunt_config("${get_terragrunt_dir()}/../common.hcl")
}

terraform {
  source = "git::https://git.example.com/infra/modules.git//ecs-service?ref=v2.1.0"
}

# The unit's inputs are the common ones plus its own, built by merge().
inputs = merge(
  local.common.inputs,
  {
    capacity = {
      api = { min_size = 3, max_size = 9 }
    }
  },
)
