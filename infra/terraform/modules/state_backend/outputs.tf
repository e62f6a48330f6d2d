output "bucket_name" {
  description = "Name of the Terraform state bucket (`-backend-config=bucket=...`)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the Terraform state bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "ARN of the key encrypting state and lock files (`-backend-config=kms_key_id=...`)."
  value       = module.kms.key_arn
}

output "access_logs_bucket_arn" {
  description = "ARN of the state bucket's access-log bucket."
  value       = module.access_logs.bucket_arn
}
