inputs = {
  min_size = = 2
}
