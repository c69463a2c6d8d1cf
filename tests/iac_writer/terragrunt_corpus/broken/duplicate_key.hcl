inputs = {
  capacity = {
    min_size = 2
    max_size = 4
    min_size = 3
  }
}
