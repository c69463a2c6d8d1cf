web_min_size = 4
capacity = {
  web = { min = 2 }
