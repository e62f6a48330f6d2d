variable "bucket_id" {
  description = "Name (ID) of the bucket to harden."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_id))
    error_message = "bucket_id must be an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}
