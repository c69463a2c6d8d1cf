capacity = {
  web = { min = 2 }
  (var.tier) = { min = 3 }
}
other = {
  "${var.k}" = 1
  min = 4
}
