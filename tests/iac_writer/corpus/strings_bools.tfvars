web_min_size    = "4"
web_max_size    = true
worker_min_size = null
worker_max_size = "${var.size}"
api_min_size    = ["4"]
