variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`; the function is `<name_prefix>-feature-serving`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

################################################################################
# Code and reference data (the artifacts bucket the deploy workflow fills)
################################################################################

variable "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket holding `code/<git sha>/lakehouse.zip` and the reference data."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifacts_bucket_arn))
    error_message = "artifacts_bucket_arn must be an S3 bucket ARN."
  }
}

variable "artifacts_kms_key_arn" {
  description = "Key encrypting the artifacts bucket's objects (the function decrypts the FX rates and the model through S3)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.artifacts_kms_key_arn))
    error_message = "artifacts_kms_key_arn must be a KMS key ARN."
  }
}

variable "code_key" {
  description = "Object key of the code bundle, `code/<git sha>/lakehouse.zip` (spark_jobs/ and feature_store/ at its root, as scripts/package.py builds it)."
  type        = string

  validation {
    condition     = can(regex("^code/[A-Za-z0-9._-]+/lakehouse\\.zip$", var.code_key))
    error_message = "code_key must be code/<version>/lakehouse.zip."
  }
}

variable "fx_rates_key" {
  description = "Object key of the FX reference data the batch jobs use too (e.g. `code/<git sha>/spark_jobs/reference_data/fx_rates.csv`); FX_RATES_URI."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()/-]+$", var.fx_rates_key))
    error_message = "fx_rates_key must be one object key (no wildcards)."
  }
}

variable "model_key" {
  description = "Object key of the scoring model artifact in the artifacts bucket (MODEL_URI); null serves features without a model."
  type        = string
  default     = null

  validation {
    condition     = var.model_key == null || can(regex("^[A-Za-z0-9!_.'()/-]+$", var.model_key))
    error_message = "model_key must be one object key (no wildcards) or null."
  }
}

variable "feature_set_version" {
  description = "Feature set version the function serves (FEATURE_SET_VERSION); must equal the registry's and the model's."
  type        = number
  default     = 2

  validation {
    condition     = var.feature_set_version >= 1 && floor(var.feature_set_version) == var.feature_set_version
    error_message = "feature_set_version must be a positive integer."
  }
}

################################################################################
# State, secret and network
################################################################################

variable "online_state_table_name" {
  description = "Name of the online state table (ONLINE_STATE_TABLE)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.online_state_table_name))
    error_message = "online_state_table_name must be a DynamoDB table name."
  }
}

variable "online_state_table_arn" {
  description = "ARN of the online state table; the only table the function may read or write."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.online_state_table_arn))
    error_message = "online_state_table_arn must be a DynamoDB table ARN."
  }
}

variable "online_state_kms_key_arn" {
  description = "Key of the online state table; also encrypts the function's environment variables."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.online_state_kms_key_arn))
    error_message = "online_state_kms_key_arn must be a KMS key ARN."
  }
}

variable "merchant_feature_group_name" {
  description = "The merchant feature group the function reads with BatchGetRecord (MERCHANT_FEATURE_GROUP): `merchant-features-v{feature_set_version}`."
  type        = string

  validation {
    condition     = can(regex("^merchant-features-v[0-9]+$", var.merchant_feature_group_name))
    error_message = "merchant_feature_group_name must be merchant-features-v<N>."
  }
}

variable "online_store_kms_key_arn" {
  description = "Key of the Feature Store online store (the merchant group's records are encrypted with it)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.online_store_kms_key_arn))
    error_message = "online_store_kms_key_arn must be a KMS key ARN."
  }
}

variable "card_token_secret_arn" {
  description = "ARN of the secret holding the card-token HMAC key."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.card_token_secret_arn))
    error_message = "card_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "card_token_secret_id" {
  description = "Name of the card-token secret the function reads (CARD_TOKEN_SECRET_ID), as the jobs' --card-token-secret-id."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.card_token_secret_id))
    error_message = "card_token_secret_id must be a Secrets Manager secret name."
  }
}

variable "card_token_kms_key_arn" {
  description = "Key encrypting the card-token secret."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.card_token_kms_key_arn))
    error_message = "card_token_kms_key_arn must be a KMS key ARN."
  }
}

variable "vpc_id" {
  description = "VPC of the function (the network module's)."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID (vpc-...)."
  }
}

variable "subnet_ids" {
  description = "Private subnets the function runs in (the network module's; no route to the internet needed)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "subnet_ids needs at least two subnet IDs (subnet-...), one per availability zone."
  }
}

variable "interface_endpoints_security_group_id" {
  description = "Security group of the VPC's interface endpoints (Secrets Manager); the module lets the function in."
  type        = string

  validation {
    condition     = can(regex("^sg-[0-9a-f]+$", var.interface_endpoints_security_group_id))
    error_message = "interface_endpoints_security_group_id must be a security group ID (sg-...)."
  }
}

variable "gateway_endpoint_prefix_list_ids" {
  description = "Prefix lists of the VPC's gateway endpoints by service; the function needs `dynamodb` and `s3`."
  type        = map(string)

  validation {
    condition     = alltrue([for service in ["dynamodb", "s3"] : contains(keys(var.gateway_endpoint_prefix_list_ids), service)]) && alltrue([for id in values(var.gateway_endpoint_prefix_list_ids) : can(regex("^pl-[0-9a-f]+$", id))])
    error_message = "gateway_endpoint_prefix_list_ids needs prefix list IDs (pl-...) for dynamodb and s3."
  }
}

################################################################################
# Capacity, invocation, observability
################################################################################

variable "memory_size" {
  description = "Memory of the function in MB (CPU scales with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout_seconds" {
  description = "Timeout of one invocation in seconds (a scoring request is answered in milliseconds; keep it short)."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 1 and 900."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) the function."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrency >= 1 && floor(var.reserved_concurrency) == var.reserved_concurrency
    error_message = "reserved_concurrency must be a positive integer."
  }
}

variable "enable_xray" {
  description = "Trace invocations with X-Ray (Active tracing and the role's trace-writing permissions)."
  type        = bool
  default     = true
}

variable "invoker_principal_arns" {
  description = "IAM roles or users (ARNs) allowed to invoke the function (and its URL, if created); invocation is IAM-authenticated only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.invoker_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", arn)) && !can(regex("\\*", arn))])
    error_message = "invoker_principal_arns must be IAM role or user ARNs without wildcards."
  }
}

variable "create_function_url" {
  description = "Create an HTTPS function URL with AWS_IAM authorization (SigV4-signed requests of the invokers only); never public."
  type        = bool
  default     = false
}

variable "p99_duration_threshold_ms" {
  description = "The p99 duration alarm fires when the function's p99 over a minute exceeds this, 3 minutes out of 5."
  type        = number
  default     = 250

  validation {
    condition     = var.p99_duration_threshold_ms > 0 && var.p99_duration_threshold_ms <= 900000
    error_message = "p99_duration_threshold_ms must be positive and at most the Lambda maximum (900000 ms)."
  }
}

variable "alerts_topic_arn" {
  description = "SNS topic the alarms notify (the monitoring module's alerts topic)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", var.alerts_topic_arn))
    error_message = "alerts_topic_arn must be an SNS topic ARN."
  }
}

variable "runbook_url" {
  description = "Runbook the alarm descriptions link to (section anchors are appended), e.g. `https://github.com/<owner>/<repo>/blob/main/docs/runbook.md`."
  type        = string
  default     = "docs/runbook.md"

  validation {
    condition     = endswith(var.runbook_url, "runbook.md") && !strcontains(var.runbook_url, "#")
    error_message = "runbook_url must point at runbook.md, without an anchor (the alarms add theirs)."
  }
}

variable "logs_kms_key_arn" {
  description = "Key of the function's log group (the monitoring key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.logs_kms_key_arn))
    error_message = "logs_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the execution role; null for none."
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
