locals {
  inputs = { min_size = 2 }
}

inputs = local.inputs
