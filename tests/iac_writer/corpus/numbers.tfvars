scale_factor   = 1e3
burst_ratio    = 2.5E+1
cpu_target     = 0.250
web_min_size   = 4.0
zero_padded    = 016
tiny           = 1.5e-3
