variable "resource_prefix" {
  description = "Prefix shared by every stack of this fork in the account, e.g. `cardfeat` (stacks are `cardfeat-dev`, `cardfeat-prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-14 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an old state version is kept (the S3 backend relies on versioning for recovery)."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_expiration_days >= 7 && var.noncurrent_version_expiration_days <= 3650
    error_message = "noncurrent_version_expiration_days must be between 7 and 3650."
  }
}

variable "access_log_expiration_days" {
  description = "Days the state bucket's access logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 1 && var.access_log_expiration_days <= 3650
    error_message = "access_log_expiration_days must be between 1 and 3650."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
