# stage / app — saved on Windows (CRLF line endings, a BOM), “quotes” and é in comments
include "root" {
  path = find_in_parent_folders("root.hcl")
}

terraform {
  source = "git::https://git.example.com/infra/modules.git//asg-alb-service?ref=v1.9.2"
}

inputs = {
  "capacity" = {
    "web" : { "min_size" : 1, "max_size" : 2 }
  }
  banner = <<EOT
capacity.web.min_size = 99
EOT
  min_size = 1
}
