output "lake_bucket_name" {
  description = "Name of the lake bucket."
  value       = aws_s3_bucket.this["lake"].id
}

output "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  value       = aws_s3_bucket.this["lake"].arn
}

output "lake_prefix" {
  description = "Key prefix of the lake root inside the lake bucket."
  value       = var.lake_prefix
}

output "lake_root" {
  description = "Lake root URI the jobs receive as `--lake-root`."
  value       = "s3://${aws_s3_bucket.this["lake"].id}/${var.lake_prefix}"
}

output "artifacts_bucket_name" {
  description = "Name of the artifacts bucket (code under `code/<git sha>/`, EMR logs under `emr-logs/`)."
  value       = aws_s3_bucket.this["artifacts"].id
}

output "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket."
  value       = aws_s3_bucket.this["artifacts"].arn
}

output "access_logs_bucket_name" {
  description = "Name of the S3 server access log bucket."
  value       = module.access_logs.bucket_id
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key encrypting the lake and artifacts buckets."
  value       = module.kms.key_arn
}
