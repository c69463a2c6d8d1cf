# forescale's schedule for an ECS service (or any Application Auto Scaling target): one
# scheduled action per entry of the map forescale writes (iac.write: schedule, with
# `schedule.fields: [min_size]` naming the target's minimum capacity).

variable "forescale_schedule" {
  description = "Written by forescale: start time (UTC) -> the capacity from then on."
  type = map(object({
    min_size = number
    max_size = optional(number)
  }))
  default = {}
}

variable "ecs_cluster" {
  type = string
}

variable "ecs_service" {
  type = string
}

variable "max_capacity" {
  description = "The service's usual maximum (used when forescale does not manage it)."
  type        = number
}

resource "aws_appautoscaling_scheduled_action" "forescale" {
  for_each = var.forescale_schedule

  name               = "forescale-${replace(each.key, ":", "")}"
  service_namespace  = "ecs"
  resource_id        = "service/${var.ecs_cluster}/${var.ecs_service}"
  scalable_dimension = "ecs:service:DesiredCount"
  schedule           = "at(${trimsuffix(each.key, "Z")}:00)"
  timezone           = "UTC"

  scalable_target_action {
    min_capacity = each.value.min_size
    max_capacity = coalesce(each.value.max_size, var.max_capacity)
  }
}
