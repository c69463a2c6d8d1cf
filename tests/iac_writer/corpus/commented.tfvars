# Production autoscaling inputs.
# web_min_size = 1          <- an old value, kept for history
// web_min_size = 2
/* web_min_size = 3
   web_max_size = 30 */

region           = "eu-west-1"   # primary region
web_min_size     = 4             # bumped for Black Friday
web_max_size     = 20            // hard ceiling, see runbook
/* inline */ web_desired_size = 6 /* trailing */

worker_min_size  = 2 # worker_min_size = 8 would be too many
