availability_zones = [
  "eu-west-1a", # AZ a
  "eu-west-1b",
]
sizes = [1, 2, 3]
instance_types = { web = ["m5.large", "m5.xlarge"] }
web_min_size = 2
