variable "alias_name" {
  description = "Alias of the key without the `alias/` prefix, e.g. `cardfeat-dev-lake`."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]{1,250}$", var.alias_name)) && !startswith(var.alias_name, "aws/")
    error_message = "alias_name may contain letters, digits, '/', '_' and '-' only, and must not start with 'aws/'."
  }
}

variable "description" {
  description = "What the key protects; shown in the KMS console."
  type        = string

  validation {
    condition     = length(var.description) > 0 && length(var.description) <= 8192
    error_message = "description must be 1 to 8192 characters."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion completes."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "rotation_period_in_days" {
  description = "Automatic rotation period of the key material."
  type        = number
  default     = 365

  validation {
    condition     = var.rotation_period_in_days >= 90 && var.rotation_period_in_days <= 2560
    error_message = "rotation_period_in_days must be between 90 and 2560."
  }
}

variable "service_principal_statements" {
  description = <<-EOT
    Extra key-policy statements for AWS service principals that use the key on their own behalf (for example
    CloudWatch Logs or CloudWatch alarms publishing to an encrypted SNS topic). Principals in this account are
    granted use through IAM policies instead, which the key policy enables for the account.
  EOT
  type = list(object({
    sid        = string
    services   = list(string)
    actions    = list(string)
    conditions = optional(list(object({ test = string, variable = string, values = list(string) })), [])
  }))
  default = []

  validation {
    condition = alltrue([
      for s in var.service_principal_statements :
      alltrue([for a in s.actions : can(regex("^kms:[A-Za-z]+$", a))]) && length(s.services) > 0
    ])
    error_message = "Each statement needs at least one service and explicit kms:Action names (no wildcards)."
  }
}

variable "tags" {
  description = "Tags added to the key."
  type        = map(string)
  default     = {}
}
