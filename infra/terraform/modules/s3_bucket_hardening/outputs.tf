output "public_access_block_id" {
  description = "ID (the bucket name) of the public access block."
  value       = aws_s3_bucket_public_access_block.this.id
}

output "versioning_id" {
  description = "ID (the bucket name) of the versioning configuration."
  value       = aws_s3_bucket_versioning.this.id
}
