# café
web_min_size = 4
