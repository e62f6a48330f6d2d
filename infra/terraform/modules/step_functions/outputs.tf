output "state_machine_arns" {
  description = "ARNs of the state machines, by short name (`stream`, `daily`)."
  value       = { for name, machine in aws_sfn_state_machine.this : name => machine.arn }
}

output "state_machine_names" {
  description = "Names of the state machines, by short name."
  value       = { for name, machine in aws_sfn_state_machine.this : name => machine.name }
}

output "role_arn" {
  description = "ARN of the role the state machines run with."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the executions."
  value       = aws_cloudwatch_log_group.this.name
}

output "template_variable_names" {
  description = "Names passed to templatefile(); every `$${...}` placeholder of the ASL files must be one of them."
  value       = sort(keys(local.template_variables))
}
