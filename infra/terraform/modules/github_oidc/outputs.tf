output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the roles trust."
  value       = local.oidc_provider_arn
}

output "plan_role_arn" {
  description = "Role for `terraform plan` on pull requests (repository variable `<STACK>_AWS_PLAN_ROLE_ARN`)."
  value       = aws_iam_role.plan.arn
}

output "deploy_role_arn" {
  description = "Role for deployments from the protected environments (repository variable `<STACK>_AWS_DEPLOY_ROLE_ARN`)."
  value       = aws_iam_role.deploy.arn
}

output "permissions_boundary_arn" {
  description = "Boundary every workload role must carry (`permissions_boundary_arn` of the stacks)."
  value       = aws_iam_policy.boundary.arn
}

output "plan_subjects" {
  description = "OIDC subjects the plan role trusts."
  value       = local.plan_subjects
}

output "deploy_subjects" {
  description = "OIDC subjects the deploy role trusts."
  value       = local.deploy_subjects
}
