output "application_id" {
  description = "ID of the EMR Serverless application."
  value       = aws_emrserverless_application.this.id
}

output "application_arn" {
  description = "ARN of the EMR Serverless application."
  value       = aws_emrserverless_application.this.arn
}

output "job_role_arn" {
  description = "ARN of the job runtime role the state machines pass to StartJobRun."
  value       = aws_iam_role.this.arn
}

output "job_role_name" {
  description = "Name of the job runtime role."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "CloudWatch log group of the jobs (driver/executor output and EMF metrics)."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the jobs' CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "ecr_repository_name" {
  description = "Name of the ECR repository of the custom image."
  value       = aws_ecr_repository.this.name
}

output "ecr_repository_url" {
  description = "URL of the ECR repository of the custom image (push `<url>:<git sha>`)."
  value       = aws_ecr_repository.this.repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the ECR repository of the custom image."
  value       = aws_ecr_repository.this.arn
}

output "image_uri" {
  description = "Image the application runs, or null for EMR's default image."
  value       = var.image_tag == "" ? null : "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
}
