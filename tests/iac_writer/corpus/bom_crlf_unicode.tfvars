# Équipe plateforme — capacité 🚀 (web_min_size = 42)
owner        = "Zoë"   # ünïcödé before the target shifts byte offsets
web_min_size = 2
note         = "naïve = 9"
web_max_size = 16
