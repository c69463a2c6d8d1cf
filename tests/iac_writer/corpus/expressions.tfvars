web_min_size    = 2 + 3
web_max_size    = var.max_size
worker_min_size = (4)
worker_max_size = true ? 1 : 2
api_min_size    = max(2, 3)
api_max_size    = -var.x
flag            = !true
capacity = {
  web = {
    min = var.x + 1
  }
}
