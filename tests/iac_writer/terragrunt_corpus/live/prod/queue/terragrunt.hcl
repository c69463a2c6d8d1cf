include "root" {
  path = find_in_parent_folders("root.hcl")
}

feature "queue_min" {
  default = 2
}

locals {
  sizes = {
    prod  = { min_size = 4 }
    stage = { min_size = 1 }
  }
}

inputs = {
  capacity     = local.sizes
  min_size     = feature.queue_min.value
  max_size     = get_env("QUEUE_MAX_SIZE", 20)
  burst        = tonumber(file("${get_terragrunt_dir()}/burst.txt"))
  desired_size = try(local.sizes.prod.min_size, 2) + 1 # one spare
  spare        = var.spare_capacity
  retention    = 345600 # 4 days, in seconds
}
