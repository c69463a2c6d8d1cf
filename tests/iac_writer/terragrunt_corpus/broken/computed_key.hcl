locals {
  key = "min_size"
}

inputs = {
  (local.key) = 5
  max_size    = 9
}
