variable "bucket_name" {
  description = "Name of the access-log bucket (globally unique; callers add the account and region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "source_bucket_arns" {
  description = "ARNs of the buckets whose server access logs are delivered here (the log-delivery service may write for these only)."
  type        = list(string)

  validation {
    condition     = length(var.source_bucket_arns) > 0 && alltrue([for arn in var.source_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", arn))])
    error_message = "source_bucket_arns must be a non-empty list of S3 bucket ARNs (no wildcards, no object paths)."
  }
}

variable "expiration_days" {
  description = "Days access logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.expiration_days >= 1 && var.expiration_days <= 3650
    error_message = "expiration_days must be between 1 and 3650."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its logs. Keep false for production."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
