# tflint core with its bundled Terraform ruleset only: no plugin is downloaded (the AWS ruleset would need
# GitHub releases). tests/infra runs `tflint --recursive` from infra/terraform.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
