offset_a = -3
offset_b = - 2
offset_c = -1.5e2
web_min_size = 4
