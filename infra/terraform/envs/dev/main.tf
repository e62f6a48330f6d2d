provider "aws" {
  region              = var.aws_region
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = {
      Project     = var.project
      Environment = "dev"
      ManagedBy   = "terraform"
    }
  }
}

# A development stack: small capacity, short retention, data may be destroyed with the stack.
module "platform" {
  source = "../../modules/platform"

  project                  = var.project
  environment              = "dev"
  permissions_boundary_arn = var.permissions_boundary_arn
  state_machines_dir       = "${path.root}/../../../../state_machines"
  code_version             = var.code_version
  emr_image_tag            = var.emr_image_tag
  alarm_email              = var.alarm_email
  protect_data             = var.protect_data

  network = {
    vpc_cidr             = "10.40.0.0/16"
    private_subnet_cidrs = ["10.40.0.0/20", "10.40.16.0/20"]
    enable_nat_gateway   = var.enable_nat_gateway
  }

  ingestion = {
    stream_mode                = "ON_DEMAND"
    buffering_size_mb          = 16
    buffering_interval_seconds = 120
  }

  retention = {
    bronze_days            = 30
    runs_days              = 14
    dead_letter_days       = 14
    noncurrent_days        = 7
    access_log_days        = 30
    log_group_days         = 14
    kms_deletion_window    = 7
    secret_recovery_window = 7
  }

  emr = {
    max_cpu              = "16 vCPU"
    max_memory           = "64 GB"
    max_disk             = "500 GB"
    idle_timeout_minutes = 5
  }

  schedules = {
    stream = { expression = "rate(10 minutes)", enabled = var.schedules_enabled }
    daily  = { expression = "cron(30 1 * * ? *)", enabled = var.schedules_enabled }
  }

  alarms = {
    # A dev stack often has no producer running.
    enable_silence_alarm = false
  }
}
