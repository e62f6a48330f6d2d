output "state_bucket" {
  description = "Repository variable `<STACK>_TF_STATE_BUCKET`."
  value       = module.state_backend.bucket_name
}

output "state_kms_key_arn" {
  description = "Repository variable `<STACK>_TF_STATE_KMS_KEY_ARN`."
  value       = module.state_backend.kms_key_arn
}

output "plan_role_arn" {
  description = "Repository variable `<STACK>_AWS_PLAN_ROLE_ARN`."
  value       = module.github_oidc.plan_role_arn
}

output "deploy_role_arn" {
  description = "Repository variable `<STACK>_AWS_DEPLOY_ROLE_ARN`."
  value       = module.github_oidc.deploy_role_arn
}

output "permissions_boundary_arn" {
  description = "`permissions_boundary_arn` of the env roots' terraform.tfvars."
  value       = module.github_oidc.permissions_boundary_arn
}

output "backend_config" {
  description = "Arguments for `terraform init` in envs/dev or envs/prod."
  value       = "-backend-config=bucket=${module.state_backend.bucket_name} -backend-config=region=${var.aws_region} -backend-config=kms_key_id=${module.state_backend.kms_key_arn}"
}

output "allowed_regions" {
  description = "Regions the deploy role may deploy stacks into (the env roots' `aws_region` must be one of them)."
  value       = local.allowed_regions
}
