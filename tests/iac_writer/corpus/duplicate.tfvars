# web_min_size is set twice: Terraform says "Attribute redefined"
region = "eu-west-1"
web_min_size = 3

web_max_size = 12
worker_min_size = 1


web_min_size = 5
