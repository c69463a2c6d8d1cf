terraform {
  source = "../modules//app"
}
