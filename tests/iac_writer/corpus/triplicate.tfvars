a = 1
web_min_size = 1
web_min_size = 2
web_min_size = 3
