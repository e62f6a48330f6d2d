output "function_name" {
  description = "Name of the feature-serving Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the feature-serving Lambda function (invokers need lambda:InvokeFunction on it)."
  value       = aws_lambda_function.this.arn
}

output "function_url" {
  description = "HTTPS URL of the function (AWS_IAM auth, SigV4-signed requests), or null when not created."
  value       = var.create_function_url ? aws_lambda_function_url.this[0].function_url : null
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the function (JSON logs)."
  value       = aws_cloudwatch_log_group.this.name
}

output "security_group_id" {
  description = "Security group of the function's network interfaces."
  value       = aws_security_group.this.id
}

output "alarm_names" {
  description = "Names of the function's alarms (`errors`, `p99_duration`)."
  value = {
    errors       = aws_cloudwatch_metric_alarm.errors.alarm_name
    p99_duration = aws_cloudwatch_metric_alarm.p99_duration.alarm_name
  }
}
