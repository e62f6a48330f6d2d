variable "bucket_arn" {
  description = "ARN of the one bucket the statements protect (S3 rejects a bucket policy that names another bucket)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_arn))
    error_message = "bucket_arn must be an S3 bucket ARN (no wildcards, no object paths), e.g. arn:aws:s3:::my-bucket."
  }
}
