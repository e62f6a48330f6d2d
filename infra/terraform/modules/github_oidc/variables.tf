variable "resource_prefix" {
  description = "Prefix shared by every stack of this fork in the account, e.g. `cardfeat`; the deploy role may only manage resources named `<prefix>-*`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-14 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "github_owner" {
  description = "GitHub owner (user or organization) of the repository, e.g. `acme`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}$", var.github_owner))
    error_message = "github_owner must be a GitHub user or organization name (no wildcards)."
  }
}

variable "github_repository" {
  description = "Repository name without the owner, e.g. `card-fraud-features`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be a repository name (no wildcards, no owner)."
  }
}

variable "github_owner_id" {
  description = "Numeric ID of the owner (`gh api repos/OWNER/REPO --jq .owner.id`), for the immutable `repo:OWNER@ID/REPO@ID:...` subject."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{1,20}$", var.github_owner_id))
    error_message = "github_owner_id must be the numeric owner ID."
  }
}

variable "github_repository_id" {
  description = "Numeric ID of the repository (`gh api repos/OWNER/REPO --jq .id`), for the immutable subject."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{1,20}$", var.github_repository_id))
    error_message = "github_repository_id must be the numeric repository ID."
  }
}

variable "deploy_environments" {
  description = "GitHub environments whose jobs may assume the deploy role (protect them with required reviewers)."
  type        = list(string)
  default     = ["production"]

  validation {
    condition     = length(var.deploy_environments) > 0 && alltrue([for e in var.deploy_environments : can(regex("^[A-Za-z0-9._-]{1,255}$", e))])
    error_message = "deploy_environments must be GitHub environment names (no wildcards)."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider; false reuses existing_oidc_provider_arn (an account has only one)."
  type        = bool
  default     = true
}

variable "existing_oidc_provider_arn" {
  description = "ARN of an existing token.actions.githubusercontent.com provider, when create_oidc_provider is false."
  type        = string
  default     = null

  validation {
    condition     = var.existing_oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.existing_oidc_provider_arn))
    error_message = "existing_oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider."
  }
}

variable "allowed_regions" {
  description = "Regions the deploy role may create stacks in."
  type        = list(string)

  validation {
    condition     = length(var.allowed_regions) > 0 && alltrue([for r in var.allowed_regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "allowed_regions must be AWS region names such as eu-west-1."
  }
}

variable "state_bucket_arn" {
  description = "ARN of the Terraform state bucket (from the state_backend module)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]{3,63}$", var.state_bucket_arn))
    error_message = "state_bucket_arn must be an S3 bucket ARN."
  }
}

variable "state_kms_key_arn" {
  description = "ARN of the key encrypting the Terraform state."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.state_kms_key_arn))
    error_message = "state_kms_key_arn must be a KMS key ARN."
  }
}

variable "protected_bucket_arns" {
  description = "Buckets the deploy role may never reconfigure or delete (the state bucket and its access-log bucket)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.protected_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]{3,63}$", b))])
    error_message = "protected_bucket_arns must be S3 bucket ARNs."
  }
}

variable "feature_group_name_prefix" {
  description = "Card feature groups the deploy workflow registers (`card-features-v{N}`)."
  type        = string
  default     = "card-features-v"

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,50}$", var.feature_group_name_prefix))
    error_message = "feature_group_name_prefix must be a feature group name prefix."
  }
}

variable "merchant_feature_group_name_prefix" {
  description = "Merchant feature groups the deploy workflow registers, matched as `<prefix>*` (names are `merchant-features-v{N}`)."
  type        = string
  default     = "merchant-features-v"

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,50}$", var.merchant_feature_group_name_prefix))
    error_message = "merchant_feature_group_name_prefix must be a feature group name prefix."
  }
}

variable "max_session_duration" {
  description = "Maximum session length of both roles, in seconds (a full deploy builds an image and applies Terraform)."
  type        = number
  default     = 7200

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
