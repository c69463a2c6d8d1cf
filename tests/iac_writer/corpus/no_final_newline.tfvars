region = "eu-west-1"
web_min_size = 4