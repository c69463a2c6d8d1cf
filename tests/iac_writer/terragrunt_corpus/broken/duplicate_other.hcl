download_dir = "/tmp/tg"
inputs = {
  min_size = 2
}
download_dir = "/var/tmp/tg"
