variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev` (lowercase letters, digits, hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "lake_prefix" {
  description = "Key prefix of the lake root inside the lake bucket (no leading or trailing slash); the jobs get `--lake-root s3://<bucket>/<lake_prefix>`."
  type        = string
  default     = "lake"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_/-]*[a-z0-9]$", var.lake_prefix)) && !strcontains(var.lake_prefix, "//")
    error_message = "lake_prefix must be a relative key prefix without leading/trailing slashes, e.g. `lake`."
  }
}

variable "bronze_expiration_days" {
  description = "Days after which bronze objects (raw authorizations, chargeback labels, Firehose errors) expire. Silver keeps the validated history."
  type        = number
  default     = 400

  validation {
    condition     = var.bronze_expiration_days >= 1 && var.bronze_expiration_days <= 3650
    error_message = "bronze_expiration_days must be between 1 and 3650."
  }
}

variable "runs_expiration_days" {
  description = "Days after which run reports under `_runs/` expire."
  type        = number
  default     = 90

  validation {
    condition     = var.runs_expiration_days >= 1 && var.runs_expiration_days <= 3650
    error_message = "runs_expiration_days must be between 1 and 3650."
  }
}

variable "dead_letter_expiration_days" {
  description = "Days after which Feature Store dead letters under `_dead_letter/` expire."
  type        = number
  default     = 30

  validation {
    condition     = var.dead_letter_expiration_days >= 1 && var.dead_letter_expiration_days <= 3650
    error_message = "dead_letter_expiration_days must be between 1 and 3650."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object version is kept (Delta VACUUM and overwrites leave noncurrent versions)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && var.noncurrent_version_expiration_days <= 3650
    error_message = "noncurrent_version_expiration_days must be between 1 and 3650."
  }
}

variable "access_log_expiration_days" {
  description = "Days S3 server access logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 1 && var.access_log_expiration_days <= 3650
    error_message = "access_log_expiration_days must be between 1 and 3650."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (all data and versions). Keep false for production."
  type        = bool
  default     = false
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the lake key is deleted after `terraform destroy`."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
