variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "schedules" {
  description = <<-EOT
    Schedules by state machine short name: the expression (rate or cron, UTC unless a timezone is given) and
    whether it is enabled. Each run receives `{"scheduled_time": "<aws.scheduler.scheduled-time>"}`.
  EOT
  type = map(object({
    expression = string
    enabled    = optional(bool, true)
    timezone   = optional(string, "UTC")
  }))
  default = {
    stream = { expression = "rate(10 minutes)" }
    daily  = { expression = "cron(30 1 * * ? *)" }
  }

  validation {
    condition     = alltrue([for s in values(var.schedules) : can(regex("^(rate|cron|at)\\(.+\\)$", s.expression))])
    error_message = "Each schedule expression must be rate(...), cron(...) or at(...)."
  }
}

variable "state_machine_arns" {
  description = "State machine ARNs by short name; every schedule key must be one of them."
  type        = map(string)

  validation {
    condition     = alltrue([for arn in values(var.state_machine_arns) : can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:.+$", arn))])
    error_message = "state_machine_arns values must be state machine ARNs."
  }
}

variable "state_machine_kms_key_arn" {
  description = "Key encrypting the state machines (StartExecution needs it) and the schedules' data."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.state_machine_kms_key_arn))
    error_message = "state_machine_kms_key_arn must be a KMS key ARN."
  }
}

variable "maximum_event_age_seconds" {
  description = "How long Scheduler keeps retrying a start that failed (a stream run is useless after 10 minutes)."
  type        = number
  default     = 600

  validation {
    condition     = var.maximum_event_age_seconds >= 60 && var.maximum_event_age_seconds <= 86400
    error_message = "maximum_event_age_seconds must be between 60 and 86400."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the scheduler role; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN or null."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
