variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "lake_root" {
  description = "Lake root URI, `s3://<bucket>/<lake_prefix>`; database locations are below it."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]{3,63}/[a-z0-9][a-z0-9_/-]*[a-z0-9]$", var.lake_root))
    error_message = "lake_root must look like s3://bucket/prefix (no trailing slash)."
  }
}

variable "databases" {
  description = <<-EOT
    Glue databases to create, by key: the name becomes `<name_prefix with _>_<key>` and the location
    `<lake_root>/<location>`. `lakehouse` receives the silver and gold Delta tables the jobs register
    (`--glue-database`); `feature_store` the offline store tables SageMaker Feature Store creates.
  EOT
  type = map(object({
    description = string
    location    = string
  }))
  default = {
    lakehouse = {
      description = "Silver and gold Delta tables registered by the EMR Serverless jobs (--glue-database)."
      location    = ""
    }
    feature_store = {
      description = "Offline store tables of the card-features-v{N} and merchant-features-v{N} feature groups."
      location    = "feature_store/offline"
    }
  }

  validation {
    condition     = alltrue([for k, v in var.databases : can(regex("^[a-z][a-z0-9_]{0,40}$", k))]) && contains(keys(var.databases), "lakehouse") && contains(keys(var.databases), "feature_store")
    error_message = "databases keys must be lowercase identifiers and include lakehouse and feature_store."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
