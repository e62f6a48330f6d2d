variable "aws_region" {
  description = "Home region of the state bucket and the stacks of this account."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as eu-west-1."
  }
}

variable "allowed_regions" {
  description = "Regions the deploy role may deploy stacks into, besides aws_region (always allowed), e.g. [\"eu-central-1\"] when one account hosts dev and prod in two regions."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.allowed_regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "allowed_regions must be AWS region names such as eu-central-1."
  }
}

variable "aws_account_id" {
  description = "Account being bootstrapped; Terraform refuses credentials of any other account."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be a 12-digit AWS account ID."
  }
}

variable "resource_prefix" {
  description = "Prefix of every stack in the account (`project` of the env roots), e.g. `cardfeat`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-14 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "github_owner" {
  description = "Owner of the GitHub repository that deploys (your fork), e.g. `acme`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}$", var.github_owner))
    error_message = "github_owner must be a GitHub user or organization name."
  }
}

variable "github_repository" {
  description = "Name of the GitHub repository that deploys, without the owner."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be a repository name."
  }
}

variable "github_owner_id" {
  description = "Numeric owner ID: `gh api repos/OWNER/REPO --jq .owner.id`."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{1,20}$", var.github_owner_id))
    error_message = "github_owner_id must be numeric."
  }
}

variable "github_repository_id" {
  description = "Numeric repository ID: `gh api repos/OWNER/REPO --jq .id`."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{1,20}$", var.github_repository_id))
    error_message = "github_repository_id must be numeric."
  }
}

variable "deploy_environments" {
  description = "GitHub environments allowed to deploy into this account, e.g. [\"production\"] or [\"dev\"]."
  type        = list(string)
  default     = ["production"]

  validation {
    condition     = length(var.deploy_environments) > 0 && alltrue([for e in var.deploy_environments : can(regex("^[A-Za-z0-9._-]{1,255}$", e))])
    error_message = "deploy_environments must be GitHub environment names."
  }
}

variable "create_oidc_provider" {
  description = "Create the GitHub OIDC provider; false when the account already has one (pass its ARN below)."
  type        = bool
  default     = true
}

variable "existing_oidc_provider_arn" {
  description = "ARN of the account's existing token.actions.githubusercontent.com provider."
  type        = string
  default     = null

  validation {
    condition     = var.existing_oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.existing_oidc_provider_arn))
    error_message = "existing_oidc_provider_arn must be the ARN of the GitHub OIDC provider."
  }
}
