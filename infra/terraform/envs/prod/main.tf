provider "aws" {
  region              = var.aws_region
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = {
      Project     = var.project
      Environment = "prod"
      ManagedBy   = "terraform"
    }
  }
}

# The production stack: full capacity, long retention, data protected from destroy.
module "platform" {
  source = "../../modules/platform"

  project                  = var.project
  environment              = "prod"
  permissions_boundary_arn = var.permissions_boundary_arn
  state_machines_dir       = "${path.root}/../../../../state_machines"
  code_version             = var.code_version
  emr_image_tag            = var.emr_image_tag
  alarm_email              = var.alarm_email
  protect_data             = var.protect_data

  network = {
    vpc_cidr             = "10.50.0.0/16"
    private_subnet_cidrs = ["10.50.0.0/20", "10.50.16.0/20", "10.50.32.0/20"]
    enable_nat_gateway   = var.enable_nat_gateway
    public_subnet_cidr   = "10.50.255.0/24"
  }

  ingestion = {
    stream_mode                = "ON_DEMAND"
    stream_retention_hours     = 72
    buffering_size_mb          = 64
    buffering_interval_seconds = 300
  }

  retention = {
    bronze_days            = 400
    runs_days              = 90
    dead_letter_days       = 30
    noncurrent_days        = 30
    access_log_days        = 365
    log_group_days         = 90
    kms_deletion_window    = 30
    secret_recovery_window = 30
  }

  emr = {
    max_cpu              = "64 vCPU"
    max_memory           = "256 GB"
    max_disk             = "2000 GB"
    idle_timeout_minutes = 15
  }

  schedules = {
    stream = { expression = "rate(10 minutes)", enabled = var.schedules_enabled }
    daily  = { expression = "cron(30 1 * * ? *)", enabled = var.schedules_enabled }
  }
}
