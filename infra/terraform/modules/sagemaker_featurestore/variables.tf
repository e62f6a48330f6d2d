variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket; the offline store lives under `<lake_prefix>/feature_store/offline/`."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]{3,63}$", var.lake_bucket_arn))
    error_message = "lake_bucket_arn must be an S3 bucket ARN."
  }
}

variable "lake_prefix" {
  description = "Key prefix of the lake root inside the lake bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_/-]*[a-z0-9]$", var.lake_prefix))
    error_message = "lake_prefix must be a relative key prefix without leading/trailing slashes."
  }
}

variable "offline_store_kms_key_arn" {
  description = "Key the offline store encrypts its S3 objects with (the lake key, so the whole bucket uses one key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.offline_store_kms_key_arn))
    error_message = "offline_store_kms_key_arn must be a KMS key ARN."
  }
}

variable "glue_database_name" {
  description = "Glue database of the offline store tables (from the glue module)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.glue_database_name))
    error_message = "glue_database_name must be a lowercase Glue database name."
  }
}

variable "feature_group_name_prefix" {
  description = "Card feature groups this platform owns, matched as `<prefix>*` (names are `card-features-v{N}`)."
  type        = string
  default     = "card-features-v"

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,50}$", var.feature_group_name_prefix))
    error_message = "feature_group_name_prefix must be a feature group name prefix."
  }
}

variable "merchant_feature_group_name_prefix" {
  description = "Merchant feature groups this platform owns, matched as `<prefix>*` (names are `merchant-features-v{N}`)."
  type        = string
  default     = "merchant-features-v"

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,50}$", var.merchant_feature_group_name_prefix))
    error_message = "merchant_feature_group_name_prefix must be a feature group name prefix."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the offline store role; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN or null."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the online store key is deleted after `terraform destroy`."
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
