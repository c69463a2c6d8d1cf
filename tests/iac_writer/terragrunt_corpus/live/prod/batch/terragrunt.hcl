include "root" {
  path   = find_in_parent_folders("root.hcl")
  expose = true
}

include "envcommon" {
  path           = "${dirname(find_in_parent_folders("root.hcl"))}/_envcommon/app.hcl"
  merge_strategy = "deep"
  expose         = true
}

terraform {
  source = "${include.envcommon.locals.base_source_url}?ref=v1.9.2"
}

# No inputs here: they all come from the included files.
