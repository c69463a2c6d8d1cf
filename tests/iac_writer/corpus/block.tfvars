web_min_size = 4
variable "x" {
  default = 1
}
