# Legacy layout (Terragrunt < 0.32 style): an unlabelled include and flat inputs.
include {
  path = find_in_parent_folders()
}

terraform {
  source = "../../../modules//worker"

  extra_arguments "retry_lock" {
    commands  = get_terraform_commands_that_need_locking()
    arguments = ["-lock-timeout=20m"]
  }
}

inputs = {
  name          = "worker"
  instance_type = "c6i.large"

  min_size     = 3
  max_size     = 12
  desired_size = 3.0
  scale_factor = 1e1
  cooldown     = -1

  // queue_min_size = 9
  queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
  enabled   = true
  spot      = null
  azs       = ["eu-west-1a", "eu-west-1b"]
}
