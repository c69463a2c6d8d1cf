# Saved by an editor that writes a UTF-8 BOM.
web_min_size = 5
web_max_size = 25
