# ---------------------------------------------------------------------------------------------
# Root Terragrunt configuration, included by every unit below live/.
# ---------------------------------------------------------------------------------------------

locals {
  account_vars = read_terragrunt_config(find_in_parent_folders("account.hcl"))
  env_vars     = read_terragrunt_config(find_in_parent_folders("env.hcl"))

  account_id = local.account_vars.locals.aws_account_id
  aws_region = local.env_vars.locals.aws_region
  tags = {
    ManagedBy = "terragrunt"
    Env       = local.env_vars.locals.environment
  }
}

generate "provider" {
  path      = "provider.tf"
  if_exists = "overwrite_terragrunt"
  contents  = <<EOF
provider "aws" {
  region              = "${local.aws_region}"
  allowed_account_ids = ["${local.account_id}"]
}
EOF
}

remote_state {
  backend = "s3"
  config = {
    encrypt        = true
    bucket         = "${get_env("TG_BUCKET_PREFIX", "")}tf-state-${local.account_id}-${local.aws_region}"
    key            = "${path_relative_to_include()}/tf.tfstate"
    region         = local.aws_region
    dynamodb_table = "tf-locks"
  }
  generate = {
    path      = "backend.tf"
    if_exists = "overwrite_terragrunt"
  }
}

# Inputs every unit inherits; a unit's own inputs win over these.
inputs = merge(
  local.account_vars.locals,
  local.env_vars.locals,
)
