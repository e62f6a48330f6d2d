variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "alarm_email" {
  description = "Email address subscribed to the alerts topic (confirm the subscription mail); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an email address or null."
  }
}

variable "state_machine_arns" {
  description = "State machines whose failed, timed-out or aborted executions raise an alarm, by short name."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.state_machine_arns) : can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:.+$", arn))])
    error_message = "state_machine_arns values must be state machine ARNs."
  }
}

variable "delivery_stream_name" {
  description = "Firehose delivery stream watched for delivery failures and stale data."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,64}$", var.delivery_stream_name))
    error_message = "delivery_stream_name must be a Firehose delivery stream name."
  }
}

variable "kinesis_stream_name" {
  description = "Kinesis data stream watched for iterator age."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,128}$", var.kinesis_stream_name))
    error_message = "kinesis_stream_name must be a Kinesis stream name."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the jobs' embedded metric format (EMF) metrics."
  type        = string
  default     = "CardFeatures"

  validation {
    condition     = length(var.metrics_namespace) > 0 && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be a custom namespace (not AWS/...)."
  }
}

variable "silver_stage" {
  description = "Value of the `Stage` dimension on the silver job's RecordsRead, AcceptedRecords and QuarantinedRecords metrics."
  type        = string
  default     = "silver"

  validation {
    condition     = length(var.silver_stage) > 0
    error_message = "silver_stage must not be empty."
  }
}

variable "chargebacks_stage" {
  description = "Value of the `Stage` dimension on the chargeback feed's metrics (ChangedChargebackFiles, ChargebacksQuarantined)."
  type        = string
  default     = "chargebacks"

  validation {
    condition     = length(var.chargebacks_stage) > 0
    error_message = "chargebacks_stage must not be empty."
  }
}

variable "feature_store_stage" {
  description = "Value of the `Stage` dimension on the ingestion job's FeatureStoreDeadLetters metric."
  type        = string
  default     = "feature_store"

  validation {
    condition     = length(var.feature_store_stage) > 0
    error_message = "feature_store_stage must not be empty."
  }
}

variable "quarantine_rate_threshold_percent" {
  description = "Alarm when more than this percentage of the records read in 10 minutes is quarantined."
  type        = number
  default     = 5

  validation {
    condition     = var.quarantine_rate_threshold_percent > 0 && var.quarantine_rate_threshold_percent <= 100
    error_message = "quarantine_rate_threshold_percent must be in (0, 100]."
  }
}

variable "enable_silence_alarm" {
  description = "Alarm when the silver job accepts no records for an hour (turn off for stacks without a producer)."
  type        = bool
  default     = true
}

variable "iterator_age_threshold_ms" {
  description = "Alarm when Firehose lags the Kinesis stream by more than this many milliseconds."
  type        = number
  default     = 600000

  validation {
    condition     = var.iterator_age_threshold_ms >= 1000
    error_message = "iterator_age_threshold_ms must be at least 1000."
  }
}

variable "data_freshness_threshold_seconds" {
  description = "Alarm when the oldest record not yet delivered to S3 by Firehose is older than this."
  type        = number
  default     = 1800

  validation {
    condition     = var.data_freshness_threshold_seconds >= 60
    error_message = "data_freshness_threshold_seconds must be at least 60."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the monitoring key is deleted after `terraform destroy`."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "runbook_url" {
  description = "Runbook the alarm descriptions link to (each alarm appends its section anchor), e.g. `https://github.com/<owner>/<repo>/blob/main/docs/runbook.md`."
  type        = string
  default     = "docs/runbook.md"

  validation {
    condition     = endswith(var.runbook_url, "runbook.md") && !strcontains(var.runbook_url, "#")
    error_message = "runbook_url must point at runbook.md, without an anchor (the alarms add theirs)."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
