variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "release_label" {
  description = "EMR release of the application; emr-7.12.0 ships Spark 3.5.6, Delta 3.3.2 and Python 3.11 (the project's pins)."
  type        = string
  default     = "emr-7.12.0"

  validation {
    condition     = can(regex("^emr-7\\.(1[1-3])\\.[0-9]+$", var.release_label))
    error_message = "release_label must be an emr-7.11.x to emr-7.13.x release (Spark 3.5.6, Delta 3.3.2), e.g. emr-7.12.0."
  }
}

variable "image_tag" {
  description = "Tag of the custom image in this module's ECR repository (the deploy workflow passes the git sha). Empty uses EMR's default image, without the project's Python dependencies."
  type        = string
  default     = ""

  validation {
    condition     = var.image_tag == "" || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be empty or a valid Docker tag."
  }
}

variable "python_executable" {
  description = "Interpreter of the custom image that runs PySpark on the driver and executors."
  type        = string
  default     = "/usr/bin/python3.11"

  validation {
    condition     = startswith(var.python_executable, "/")
    error_message = "python_executable must be an absolute path."
  }
}

variable "max_cpu" {
  description = "Maximum vCPUs the application may use across all running jobs, e.g. `32 vCPU`."
  type        = string
  default     = "32 vCPU"

  validation {
    condition     = can(regex("^[0-9]+ vCPU$", var.max_cpu))
    error_message = "max_cpu must look like `32 vCPU`."
  }
}

variable "max_memory" {
  description = "Maximum memory the application may use across all running jobs, e.g. `128 GB`."
  type        = string
  default     = "128 GB"

  validation {
    condition     = can(regex("^[0-9]+ GB$", var.max_memory))
    error_message = "max_memory must look like `128 GB`."
  }
}

variable "max_disk" {
  description = "Maximum disk the application may use across all running jobs, e.g. `1000 GB`."
  type        = string
  default     = "1000 GB"

  validation {
    condition     = can(regex("^[0-9]+ GB$", var.max_disk))
    error_message = "max_disk must look like `1000 GB`."
  }
}

variable "idle_timeout_minutes" {
  description = "Minutes without jobs after which the application stops automatically (it starts again on submission)."
  type        = number
  default     = 15

  validation {
    condition     = var.idle_timeout_minutes >= 1 && var.idle_timeout_minutes <= 10080
    error_message = "idle_timeout_minutes must be between 1 and 10080."
  }
}

variable "subnet_ids" {
  description = "Private subnets the workers run in (from the network module)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1 && alltrue([for s in var.subnet_ids : startswith(s, "subnet-")])
    error_message = "subnet_ids needs at least one subnet ID."
  }
}

variable "security_group_ids" {
  description = "Security groups of the workers (from the network module)."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) >= 1 && alltrue([for s in var.security_group_ids : startswith(s, "sg-")])
    error_message = "security_group_ids needs at least one security group ID."
  }
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket."
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

variable "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket (code under `code/`, EMR logs under `emr-logs/`)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]{3,63}$", var.artifacts_bucket_arn))
    error_message = "artifacts_bucket_arn must be an S3 bucket ARN."
  }
}

variable "lake_kms_key_arn" {
  description = "Key of the lake and artifacts buckets; also encrypts the ECR repository."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.lake_kms_key_arn))
    error_message = "lake_kms_key_arn must be a KMS key ARN."
  }
}

variable "logs_kms_key_arn" {
  description = "Key of the CloudWatch log groups (from the monitoring module)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.logs_kms_key_arn))
    error_message = "logs_kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_days" {
  description = "Retention of the job log group (driver and executor output, EMF metrics)."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value."
  }
}

variable "glue_database_names" {
  description = "Glue databases the jobs register their Delta tables in."
  type        = list(string)

  validation {
    condition     = length(var.glue_database_names) >= 1 && alltrue([for d in var.glue_database_names : can(regex("^[a-z0-9_]{1,255}$", d))])
    error_message = "glue_database_names needs at least one lowercase Glue database name."
  }
}

variable "delta_log_table_arn" {
  description = "ARN of the DynamoDB table of Delta's S3DynamoDBLogStore."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.delta_log_table_arn))
    error_message = "delta_log_table_arn must be a DynamoDB table ARN."
  }
}

variable "lease_table_arn" {
  description = "ARN of the pipeline's run-lease table, which a job started by hand with --lease-table takes (spark_jobs/run_lease.py)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.lease_table_arn))
    error_message = "lease_table_arn must be a DynamoDB table ARN."
  }
}

variable "delta_log_table_name" {
  description = "Name of the DynamoDB table of Delta's S3DynamoDBLogStore (set as the application's Spark default)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.delta_log_table_name))
    error_message = "delta_log_table_name must be a DynamoDB table name."
  }
}

variable "dynamodb_kms_key_arn" {
  description = "Key of the DynamoDB tables."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.dynamodb_kms_key_arn))
    error_message = "dynamodb_kms_key_arn must be a KMS key ARN."
  }
}

variable "event_id_index_table_arn" {
  description = "ARN of the event-id index table (encrypted with dynamodb_kms_key_arn); silver_and_gold and the quarantine replay read and add to it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.event_id_index_table_arn))
    error_message = "event_id_index_table_arn must be a DynamoDB table ARN."
  }
}

variable "online_state_table_arn" {
  description = "ARN of the request-time online state table; the ingestion job keeps it in line with silver."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.online_state_table_arn))
    error_message = "online_state_table_arn must be a DynamoDB table ARN."
  }
}

variable "online_state_kms_key_arn" {
  description = "Key of the online state table."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.online_state_kms_key_arn))
    error_message = "online_state_kms_key_arn must be a KMS key ARN."
  }
}

variable "card_token_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the card-token HMAC key."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.card_token_secret_arn))
    error_message = "card_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "card_token_kms_key_arn" {
  description = "Key of the card-token secret."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.card_token_kms_key_arn))
    error_message = "card_token_kms_key_arn must be a KMS key ARN."
  }
}

variable "feature_group_name_prefix" {
  description = "Card feature groups the jobs write, matched as `<prefix>*` (groups are named `card-features-v{N}`)."
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

variable "online_store_kms_key_arn" {
  description = "Key of the feature groups' online store."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.online_store_kms_key_arn))
    error_message = "online_store_kms_key_arn must be a KMS key ARN."
  }
}

variable "image_retention_count" {
  description = "How many images the ECR lifecycle policy keeps."
  type        = number
  default     = 30

  validation {
    condition     = var.image_retention_count >= 1 && var.image_retention_count <= 1000
    error_message = "image_retention_count must be between 1 and 1000."
  }
}

variable "force_delete_repository" {
  description = "Let `terraform destroy` delete the ECR repository even when it holds images."
  type        = bool
  default     = false
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the job role; null for none."
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
