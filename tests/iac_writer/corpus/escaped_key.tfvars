capacity = {
  "w\u0065b" = { min = 2 }
  "with space" = { min = 5 }
  1 = { min = 6 }
}
