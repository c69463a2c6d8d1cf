# région eu-west-3 (saved as Latin-1)
inputs = {
  min_size = 2
}
