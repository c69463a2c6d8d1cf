terraform { source = "../modules//app" }

inputs = {
  min_size = 2
}

inputs = {
  min_size = 3
}
