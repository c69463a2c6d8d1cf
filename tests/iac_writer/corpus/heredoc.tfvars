user_data = <<EOF
#!/bin/sh
web_min_size = 99
echo "worker_min_size = 98"
EOF
banner = <<-EOT
    web_max_size = 97
    EOT
web_min_size    = 3
worker_min_size = 1
