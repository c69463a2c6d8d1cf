capacity = {
  web = {
    min = 2
    min = 3
  }
  worker = { min = 1 }
  "worker" = { min = 2 }
}
