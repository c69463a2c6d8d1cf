# forescale's schedule for an EC2 Auto Scaling group: one scheduled action per entry of
# the map forescale writes into forescale.schedule.auto.tfvars.json (iac.write: schedule).
#
#   forescale_schedule = {
#     "2025-11-28T06:45Z" = { min_size = 9 }
#     "2025-11-28T09:30Z" = { min_size = 6 }
#   }
#
# The keys are the start times (UTC): stable per start time, so a refit that changes one
# step changes one action. forescale drops entries that have passed (AWS deletes a one-time
# action after it ran) and keeps at most 125 (AWS's limit per group).

variable "forescale_schedule" {
  description = "Written by forescale: start time (UTC) -> the capacity from then on."
  type = map(object({
    min_size         = number
    desired_capacity = optional(number) # only when forescale manages desired capacity
    max_size         = optional(number) # only when forescale manages the maximum
  }))
  default = {}
}

variable "asg_name" {
  type = string
}

resource "aws_autoscaling_schedule" "forescale" {
  for_each = var.forescale_schedule

  scheduled_action_name  = "forescale-${replace(each.key, ":", "")}"
  autoscaling_group_name = var.asg_name
  start_time             = replace(each.key, "Z", ":00Z") # RFC 3339 with seconds
  min_size               = each.value.min_size
  # -1 leaves a value unchanged (the AWS API's way to say "not set")
  desired_capacity = coalesce(each.value.desired_capacity, -1)
  max_size         = coalesce(each.value.max_size, -1)
}

# The group itself keeps its own desired capacity: without this, every `terraform apply`
# would reset what the scheduled actions and the group's own scaling policies set.
#
# resource "aws_autoscaling_group" "web" {
#   ...
#   lifecycle {
#     ignore_changes = [desired_capacity, min_size]
#   }
# }
