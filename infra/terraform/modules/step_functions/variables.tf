variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "definitions_dir" {
  description = "Directory holding `<name>.asl.json` for every state machine (the repository's `state_machines/`)."
  type        = string

  validation {
    condition     = length(var.definitions_dir) > 0
    error_message = "definitions_dir must not be empty."
  }
}

variable "state_machine_names" {
  description = "State machines to create from `<definitions_dir>/<name>.asl.json`."
  type        = list(string)
  default     = ["stream", "daily"]

  validation {
    condition     = length(var.state_machine_names) > 0 && alltrue([for n in var.state_machine_names : can(regex("^[a-z][a-z0-9_-]{0,30}$", n))])
    error_message = "state_machine_names must be short lowercase names."
  }
}

variable "emr_application_id" {
  description = "ID of the EMR Serverless application the jobs run on."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-z]{8,64}$", var.emr_application_id))
    error_message = "emr_application_id must be an EMR Serverless application ID."
  }
}

variable "emr_application_arn" {
  description = "ARN of the EMR Serverless application."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:emr-serverless:[a-z0-9-]+:[0-9]{12}:/applications/[0-9a-z]+$", var.emr_application_arn))
    error_message = "emr_application_arn must be an EMR Serverless application ARN."
  }
}

variable "emr_job_role_arn" {
  description = "ARN of the job runtime role; the only role the state machines may pass."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.emr_job_role_arn))
    error_message = "emr_job_role_arn must be an IAM role ARN."
  }
}

variable "lake_root" {
  description = "Lake root URI passed to the jobs as `--lake-root`."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]{3,63}/[a-z0-9][a-z0-9_/-]*[a-z0-9]$", var.lake_root))
    error_message = "lake_root must look like s3://bucket/prefix (no trailing slash)."
  }
}

variable "code_uri" {
  description = "S3 URI of the uploaded code, `s3://<artifacts bucket>/code/<git sha>` (entry points and lakehouse.zip)."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]{3,63}/code/[A-Za-z0-9._-]+$", var.code_uri))
    error_message = "code_uri must look like s3://bucket/code/<version> (no trailing slash)."
  }
}

variable "lease_table_name" {
  description = "Name of the run-lease DynamoDB table."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.lease_table_name))
    error_message = "lease_table_name must be a DynamoDB table name."
  }
}

variable "online_state_table_name" {
  description = "Name of the request-time online state table the ingestion job keeps in line (template variable `online_state_table`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.online_state_table_name))
    error_message = "online_state_table_name must be a DynamoDB table name."
  }
}

variable "event_id_index_table_name" {
  description = "Name of the event-id index table silver_and_gold's dedupe reads and adds to (template variable `event_id_index_table`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.event_id_index_table_name))
    error_message = "event_id_index_table_name must be a DynamoDB table name."
  }
}

variable "firehose_buffering_seconds" {
  description = "The delivery stream's buffering interval (template variable `firehose_buffering_seconds`, silver_and_gold's `--firehose-buffering-seconds`): a record arrived at most this long after its `ingest_dt=` hour."
  type        = number

  validation {
    condition     = var.firehose_buffering_seconds >= 0 && var.firehose_buffering_seconds <= 900
    error_message = "firehose_buffering_seconds must be between 0 and 900 (Firehose's range)."
  }
}

variable "stream_retention_hours" {
  description = "The Kinesis stream's retention (template variable `stream_retention_hours`, silver_and_gold's `--stream-retention-hours`): the longest useful bronze lookback."
  type        = number

  validation {
    condition     = var.stream_retention_hours >= 24 && var.stream_retention_hours <= 8760
    error_message = "stream_retention_hours must be between 24 and 8760."
  }
}

variable "bronze_lookback_hours" {
  description = "silver_and_gold's `--lookback-hours` (template variable `bronze_lookback_hours`): arrival-hour folders listed behind the ledger's high-water mark; null: the stream retention."
  type        = number
  default     = null

  validation {
    condition = var.bronze_lookback_hours == null || (
      var.bronze_lookback_hours * 3600 >= var.firehose_buffering_seconds &&
      var.bronze_lookback_hours <= var.stream_retention_hours
    )
    error_message = "bronze_lookback_hours must cover the Firehose buffering interval and not exceed the stream retention (the job refuses it otherwise)."
  }
}

variable "lease_table_arn" {
  description = "ARN of the run-lease DynamoDB table."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.lease_table_arn))
    error_message = "lease_table_arn must be a DynamoDB table ARN."
  }
}

variable "lease_table_kms_key_arn" {
  description = "Key of the run-lease table."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.lease_table_kms_key_arn))
    error_message = "lease_table_kms_key_arn must be a KMS key ARN."
  }
}

variable "alerts_topic_arn" {
  description = "SNS topic the state machines publish failures to."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", var.alerts_topic_arn))
    error_message = "alerts_topic_arn must be an SNS topic ARN."
  }
}

variable "monitoring_kms_key_arn" {
  description = "Key of the alerts topic and the log groups; it also encrypts the state machines' data."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.monitoring_kms_key_arn))
    error_message = "monitoring_kms_key_arn must be a KMS key ARN."
  }
}

variable "delta_log_table_name" {
  description = "Name of the Delta S3DynamoDBLogStore table (passed to the jobs)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.delta_log_table_name))
    error_message = "delta_log_table_name must be a DynamoDB table name."
  }
}

variable "glue_database" {
  description = "Glue database the jobs register their tables in (`--glue-database`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.glue_database))
    error_message = "glue_database must be a lowercase Glue database name."
  }
}

variable "card_token_secret_id" {
  description = "Secrets Manager secret of the card-token HMAC key (`--card-token-secret-id`)."
  type        = string

  validation {
    condition     = length(var.card_token_secret_id) > 0
    error_message = "card_token_secret_id must not be empty."
  }
}

variable "job_log_group_name" {
  description = "CloudWatch log group of the EMR jobs (`log_group_name` in the templates: the jobs' cloudWatchLoggingConfiguration)."
  type        = string

  validation {
    condition     = length(var.job_log_group_name) > 0
    error_message = "job_log_group_name must not be empty."
  }
}

variable "log_retention_days" {
  description = "Retention of the state machines' execution log group."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value."
  }
}

variable "log_level" {
  description = "Execution history events logged: ALL, ERROR or FATAL."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be ALL, ERROR or FATAL."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the state machine role; null for none."
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
