capacity = {
  # web tier; min = 99 here is only a comment
  web = {
    min = 2   # raised ahead of the peak
    max = 10
  }
  "worker" = { min = 1, max: 4 }
  api: {
    min: 3,
    max: 6,
    limits = { burst = 12 }
  }
}
web_min_size = 2
