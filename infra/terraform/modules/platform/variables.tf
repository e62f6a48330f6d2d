variable "project" {
  description = "Prefix shared by the fork's stacks (the bootstrap's `resource_prefix`), e.g. `cardfeat`; every key is tagged Project=<project>, which the deploy role requires."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}[a-z0-9]$", var.project))
    error_message = "project must be 3-14 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Stack name, e.g. `dev` or `prod`; resources are named `<project>-<environment>-...`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,4}$", var.environment))
    error_message = "environment must be 2-5 lowercase letters or digits, starting with a letter."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary every role of the stack carries (bootstrap output `permissions_boundary_arn`)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN."
  }
}

variable "lake_prefix" {
  description = "Key prefix of the lake root in the lake bucket; jobs get `--lake-root s3://<lake bucket>/<lake_prefix>`."
  type        = string
  default     = "lake"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_/-]*[a-z0-9]$", var.lake_prefix))
    error_message = "lake_prefix must be a relative key prefix without leading/trailing slashes."
  }
}

variable "state_machines_dir" {
  description = "Directory of the ASL definitions (`state_machines/` at the repository root)."
  type        = string
}

variable "code_version" {
  description = "Version of the uploaded code under `s3://<artifacts>/code/<code_version>/` (the deploy workflow passes the git sha)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,128}$", var.code_version))
    error_message = "code_version must be a path-safe version string such as a git sha."
  }
}

variable "emr_image_tag" {
  description = "Tag of the custom EMR image in the stack's ECR repository (the git sha); empty uses EMR's default image."
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
}

variable "network" {
  description = "VPC layout: CIDRs, pinned availability zones and whether a NAT gateway is added (VPC endpoints cover every service the jobs call)."
  type = object({
    vpc_cidr             = optional(string, "10.40.0.0/16")
    private_subnet_cidrs = optional(list(string), ["10.40.0.0/20", "10.40.16.0/20"])
    availability_zones   = optional(list(string)) # default: <region>a, <region>b, ... one per private subnet
    enable_nat_gateway   = optional(bool, false)
    public_subnet_cidr   = optional(string, "10.40.255.0/24")
  })
  default = {}
}

variable "ingestion" {
  description = "Kinesis and Firehose settings."
  type = object({
    stream_mode                = optional(string, "ON_DEMAND")
    shard_count                = optional(number, 1)
    stream_retention_hours     = optional(number, 24)
    buffering_size_mb          = optional(number, 64)
    buffering_interval_seconds = optional(number, 300)
  })
  default = {}
}

variable "retention" {
  description = "Days objects and logs are kept."
  type = object({
    bronze_days            = optional(number, 400)
    runs_days              = optional(number, 90)
    dead_letter_days       = optional(number, 30)
    noncurrent_days        = optional(number, 30)
    access_log_days        = optional(number, 365)
    log_group_days         = optional(number, 90)
    kms_deletion_window    = optional(number, 30)
    secret_recovery_window = optional(number, 30)
  })
  default = {}
}

variable "emr" {
  description = "EMR Serverless application settings."
  type = object({
    release_label        = optional(string, "emr-7.12.0")
    max_cpu              = optional(string, "32 vCPU")
    max_memory           = optional(string, "128 GB")
    max_disk             = optional(string, "1000 GB")
    idle_timeout_minutes = optional(number, 15)
  })
  default = {}
}

variable "schedules" {
  description = "EventBridge Scheduler schedules by state machine (`stream`, `daily`): expression and enabled flag."
  type = map(object({
    expression = string
    enabled    = optional(bool, true)
    timezone   = optional(string, "UTC")
  }))
  default = {
    stream = { expression = "rate(10 minutes)" }
    daily  = { expression = "cron(30 1 * * ? *)" }
  }
}

variable "alarms" {
  description = "Alarm thresholds and the EMF `Stage` dimension values the jobs emit."
  type = object({
    enable_silence_alarm              = optional(bool, true)
    quarantine_rate_threshold_percent = optional(number, 5)
    iterator_age_threshold_ms         = optional(number, 600000)
    data_freshness_threshold_seconds  = optional(number, 1800)
    silver_stage                      = optional(string, "silver")
    feature_store_stage               = optional(string, "feature_store")
  })
  default = {}
}

variable "serving" {
  description = "The request-time feature-serving Lambda: capacity, who may invoke it, the p99 alarm threshold, an optional model artifact key in the artifacts bucket."
  type = object({
    reserved_concurrency      = optional(number, 10)
    memory_size               = optional(number, 512)
    timeout_seconds           = optional(number, 10)
    p99_duration_threshold_ms = optional(number, 250)
    enable_xray               = optional(bool, true)
    invoker_principal_arns    = optional(list(string), [])
    create_function_url       = optional(bool, false)
    model_key                 = optional(string)
    feature_set_version       = optional(number, 2)
  })
  default = {}
}

variable "runbook_url" {
  description = "Runbook the alarm descriptions link to, e.g. `https://github.com/<owner>/<repo>/blob/main/docs/runbook.md`."
  type        = string
  default     = "docs/runbook.md"

  validation {
    condition     = endswith(var.runbook_url, "runbook.md")
    error_message = "runbook_url must point at runbook.md."
  }
}

variable "protect_data" {
  description = "Production safety: keep non-empty buckets and the ECR repository on destroy and turn on DynamoDB deletion protection. Set false (and apply) before destroying a stack."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags added to every resource (Project is always set)."
  type        = map(string)
  default     = {}
}
