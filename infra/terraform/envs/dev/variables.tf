variable "aws_region" {
  description = "Region of the stack (one stack per account and region: feature group names are fixed)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as eu-west-1."
  }
}

variable "aws_account_id" {
  description = "Account the stack belongs to; Terraform refuses to run with credentials of any other account."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be a 12-digit AWS account ID."
  }
}

variable "project" {
  description = "The bootstrap's `resource_prefix`, e.g. `cardfeat`; resources are named `<project>-<environment>-...`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}[a-z0-9]$", var.project))
    error_message = "project must be 3-14 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "permissions_boundary_arn" {
  description = "Bootstrap output `permissions_boundary_arn`: every role of the stack carries it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN."
  }
}

variable "code_version" {
  description = "Version of the code in `s3://<artifacts>/code/<code_version>/`; the workflows pass the git sha."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,128}$", var.code_version))
    error_message = "code_version must be a path-safe version string such as a git sha."
  }
}

variable "emr_image_tag" {
  description = "Tag of the custom EMR image (the workflows pass the git sha); empty uses EMR's default image."
  type        = string
  default     = ""

  validation {
    condition     = var.emr_image_tag == "" || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.emr_image_tag))
    error_message = "emr_image_tag must be empty or a valid Docker tag."
  }
}

variable "alarm_email" {
  description = "Email subscribed to the alerts topic; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an email address or null."
  }
}

variable "enable_nat_gateway" {
  description = "Add a NAT gateway (VPC endpoints already reach every service the jobs use)."
  type        = bool
  default     = false
}

variable "schedules_enabled" {
  description = "Run the stream (every 10 minutes) and daily schedules; false keeps them created but disabled."
  type        = bool
  default     = true
}

variable "protect_data" {
  description = "Keep buckets, images and tables on destroy. Set false and apply before running the destroy workflow."
  type        = bool
}
