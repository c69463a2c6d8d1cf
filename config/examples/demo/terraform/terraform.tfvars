# Production web tier — reviewed by #platform, changes go through PRs.
# forescale owns capacity.web.min_size; humans own everything else.

region        = "us-east-1"   # primary region
environment   = "prod"
instance_type = "c6i.large"

capacity = {
  web = {
    min_size = 12    # forescale: raised before peaks, lowered after
    max_size = 30
  }
  worker = {
    min_size = 2
    max_size = 10    # queue consumers; scaled by KEDA
  }
}

tags = {
  team        = "platform"
  cost_center = "cc-1234"
}
