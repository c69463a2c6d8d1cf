# Windows checkout: CRLF line endings
environment = "staging"

web_min_size = 3   # web_min_size = 30 was a typo
web_max_size = 12
tags = {
  Owner: "platform"
  Team = "sre"
}
