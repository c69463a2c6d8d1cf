web_min_size = 4
web_max_size = 0x10
