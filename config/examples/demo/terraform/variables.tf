variable "region" {
  type    = string
  default = "us-east-1"
}

variable "environment" {
  type = string
}

variable "capacity" {
  description = "Instances per tier. forescale raises web.min_size ahead of predicted peaks."
  type = map(object({
    min_size = number
    max_size = number
  }))

  validation {
    condition     = alltrue([for t in values(var.capacity) : t.min_size >= 0 && t.min_size <= t.max_size && floor(t.min_size) == t.min_size])
    error_message = "min_size must be a whole number between 0 and max_size."
  }
}

variable "instance_type" {
  type = string
}

variable "tags" {
  type    = map(string)
  default = {}
}
