data "aws_region" "current" {}

locals {
  name_prefix = "${var.project}-${var.environment}"
  # The deploy workflow uploads dist/code/ to code/<code_version>/ (scripts/package.py); the state machines read
  # the FX rates at the same place (`${code_uri}/spark_jobs/reference_data/fx_rates.csv`).
  code_prefix  = "code/${var.code_version}"
  fx_rates_key = "${local.code_prefix}/spark_jobs/reference_data/fx_rates.csv"
  availability_zones = (
    var.network.availability_zones != null
    ? var.network.availability_zones
    : [for index, cidr in var.network.private_subnet_cidrs : "${data.aws_region.current.region}${substr("abcdef", index, 1)}"]
  )
  tags = merge(var.tags, { Project = var.project, Environment = var.environment })
}

module "monitoring" {
  source = "../monitoring"

  name_prefix                       = local.name_prefix
  alarm_email                       = var.alarm_email
  state_machine_arns                = module.step_functions.state_machine_arns
  delivery_stream_name              = module.kinesis_firehose.delivery_stream_name
  kinesis_stream_name               = module.kinesis_firehose.stream_name
  enable_silence_alarm              = var.alarms.enable_silence_alarm
  quarantine_rate_threshold_percent = var.alarms.quarantine_rate_threshold_percent
  iterator_age_threshold_ms         = var.alarms.iterator_age_threshold_ms
  data_freshness_threshold_seconds  = var.alarms.data_freshness_threshold_seconds
  silver_stage                      = var.alarms.silver_stage
  feature_store_stage               = var.alarms.feature_store_stage
  runbook_url                       = var.runbook_url
  kms_deletion_window_in_days       = var.retention.kms_deletion_window
  tags                              = local.tags
}

module "s3_datalake" {
  source = "../s3_datalake"

  name_prefix                        = local.name_prefix
  lake_prefix                        = var.lake_prefix
  bronze_expiration_days             = var.retention.bronze_days
  runs_expiration_days               = var.retention.runs_days
  dead_letter_expiration_days        = var.retention.dead_letter_days
  noncurrent_version_expiration_days = var.retention.noncurrent_days
  access_log_expiration_days         = var.retention.access_log_days
  force_destroy                      = !var.protect_data
  kms_deletion_window_in_days        = var.retention.kms_deletion_window
  tags                               = local.tags
}

module "kinesis_firehose" {
  source = "../kinesis_firehose"

  name_prefix                 = local.name_prefix
  lake_bucket_arn             = module.s3_datalake.lake_bucket_arn
  lake_prefix                 = module.s3_datalake.lake_prefix
  lake_kms_key_arn            = module.s3_datalake.kms_key_arn
  logs_kms_key_arn            = module.monitoring.kms_key_arn
  log_retention_days          = var.retention.log_group_days
  stream_mode                 = var.ingestion.stream_mode
  shard_count                 = var.ingestion.shard_count
  stream_retention_hours      = var.ingestion.stream_retention_hours
  buffering_size_mb           = var.ingestion.buffering_size_mb
  buffering_interval_seconds  = var.ingestion.buffering_interval_seconds
  permissions_boundary_arn    = var.permissions_boundary_arn
  kms_deletion_window_in_days = var.retention.kms_deletion_window
  tags                        = local.tags
}

module "network" {
  source = "../network"

  name_prefix              = local.name_prefix
  vpc_cidr                 = var.network.vpc_cidr
  private_subnet_cidrs     = var.network.private_subnet_cidrs
  availability_zones       = local.availability_zones
  enable_nat_gateway       = var.network.enable_nat_gateway
  public_subnet_cidr       = var.network.public_subnet_cidr
  logs_kms_key_arn         = module.monitoring.kms_key_arn
  flow_log_retention_days  = var.retention.log_group_days
  permissions_boundary_arn = var.permissions_boundary_arn
  tags                     = local.tags
}

module "glue" {
  source = "../glue"

  name_prefix = local.name_prefix
  lake_root   = module.s3_datalake.lake_root
  tags        = local.tags
}

module "dynamodb" {
  source = "../dynamodb"

  name_prefix                 = local.name_prefix
  deletion_protection         = var.protect_data
  kms_deletion_window_in_days = var.retention.kms_deletion_window
  tags                        = local.tags
}

module "online_state" {
  source = "../online_state"

  name_prefix                 = local.name_prefix
  deletion_protection         = var.protect_data
  kms_deletion_window_in_days = var.retention.kms_deletion_window
  tags                        = local.tags
}

module "card_token_secret" {
  source = "../card_token_secret"

  name_prefix                 = local.name_prefix
  recovery_window_in_days     = var.retention.secret_recovery_window
  kms_deletion_window_in_days = var.retention.kms_deletion_window
  tags                        = local.tags
}

module "sagemaker_featurestore" {
  source = "../sagemaker_featurestore"

  name_prefix                 = local.name_prefix
  lake_bucket_arn             = module.s3_datalake.lake_bucket_arn
  lake_prefix                 = module.s3_datalake.lake_prefix
  offline_store_kms_key_arn   = module.s3_datalake.kms_key_arn
  glue_database_name          = module.glue.feature_store_database_name
  permissions_boundary_arn    = var.permissions_boundary_arn
  kms_deletion_window_in_days = var.retention.kms_deletion_window
  tags                        = local.tags
}

module "emr_serverless" {
  source = "../emr_serverless"

  name_prefix              = local.name_prefix
  release_label            = var.emr.release_label
  image_tag                = var.emr_image_tag
  max_cpu                  = var.emr.max_cpu
  max_memory               = var.emr.max_memory
  max_disk                 = var.emr.max_disk
  idle_timeout_minutes     = var.emr.idle_timeout_minutes
  subnet_ids               = module.network.private_subnet_ids
  security_group_ids       = [module.network.emr_security_group_id]
  lake_bucket_arn          = module.s3_datalake.lake_bucket_arn
  lake_prefix              = module.s3_datalake.lake_prefix
  artifacts_bucket_arn     = module.s3_datalake.artifacts_bucket_arn
  lake_kms_key_arn         = module.s3_datalake.kms_key_arn
  logs_kms_key_arn         = module.monitoring.kms_key_arn
  log_retention_days       = var.retention.log_group_days
  glue_database_names      = [module.glue.lakehouse_database_name]
  delta_log_table_arn      = module.dynamodb.delta_log_table_arn
  lease_table_arn          = module.dynamodb.lease_table_arn
  delta_log_table_name     = module.dynamodb.delta_log_table_name
  dynamodb_kms_key_arn     = module.dynamodb.kms_key_arn
  event_id_index_table_arn = module.dynamodb.event_id_index_table_arn
  card_token_secret_arn    = module.card_token_secret.secret_arn
  card_token_kms_key_arn   = module.card_token_secret.kms_key_arn
  online_store_kms_key_arn = module.sagemaker_featurestore.online_store_kms_key_arn
  online_state_table_arn   = module.online_state.table_arn
  online_state_kms_key_arn = module.online_state.kms_key_arn
  force_delete_repository  = !var.protect_data
  permissions_boundary_arn = var.permissions_boundary_arn
  tags                     = local.tags
}

module "step_functions" {
  source = "../step_functions"

  name_prefix                = local.name_prefix
  definitions_dir            = var.state_machines_dir
  emr_application_id         = module.emr_serverless.application_id
  emr_application_arn        = module.emr_serverless.application_arn
  emr_job_role_arn           = module.emr_serverless.job_role_arn
  lake_root                  = module.s3_datalake.lake_root
  code_uri                   = "s3://${module.s3_datalake.artifacts_bucket_name}/${local.code_prefix}"
  lease_table_name           = module.dynamodb.lease_table_name
  lease_table_arn            = module.dynamodb.lease_table_arn
  lease_table_kms_key_arn    = module.dynamodb.kms_key_arn
  alerts_topic_arn           = module.monitoring.alerts_topic_arn
  monitoring_kms_key_arn     = module.monitoring.kms_key_arn
  delta_log_table_name       = module.dynamodb.delta_log_table_name
  online_state_table_name    = module.online_state.table_name
  firehose_buffering_seconds = var.ingestion.buffering_interval_seconds
  stream_retention_hours     = var.ingestion.stream_retention_hours
  event_id_index_table_name  = module.dynamodb.event_id_index_table_name
  glue_database              = module.glue.lakehouse_database_name
  card_token_secret_id       = module.card_token_secret.secret_name
  job_log_group_name         = module.emr_serverless.log_group_name
  log_retention_days         = var.retention.log_group_days
  permissions_boundary_arn   = var.permissions_boundary_arn
  tags                       = local.tags
}

module "feature_serving" {
  source = "../feature_serving"

  name_prefix                           = local.name_prefix
  artifacts_bucket_arn                  = module.s3_datalake.artifacts_bucket_arn
  artifacts_kms_key_arn                 = module.s3_datalake.kms_key_arn
  code_key                              = "${local.code_prefix}/lakehouse.zip"
  fx_rates_key                          = local.fx_rates_key
  model_key                             = var.serving.model_key
  feature_set_version                   = var.serving.feature_set_version
  merchant_feature_group_name           = "merchant-features-v${var.serving.feature_set_version}"
  online_store_kms_key_arn              = module.sagemaker_featurestore.online_store_kms_key_arn
  online_state_table_name               = module.online_state.table_name
  online_state_table_arn                = module.online_state.table_arn
  online_state_kms_key_arn              = module.online_state.kms_key_arn
  card_token_secret_arn                 = module.card_token_secret.secret_arn
  card_token_secret_id                  = module.card_token_secret.secret_name
  card_token_kms_key_arn                = module.card_token_secret.kms_key_arn
  vpc_id                                = module.network.vpc_id
  subnet_ids                            = module.network.private_subnet_ids
  interface_endpoints_security_group_id = module.network.interface_endpoints_security_group_id
  gateway_endpoint_prefix_list_ids      = module.network.gateway_endpoint_prefix_list_ids
  memory_size                           = var.serving.memory_size
  timeout_seconds                       = var.serving.timeout_seconds
  reserved_concurrency                  = var.serving.reserved_concurrency
  enable_xray                           = var.serving.enable_xray
  invoker_principal_arns                = var.serving.invoker_principal_arns
  create_function_url                   = var.serving.create_function_url
  p99_duration_threshold_ms             = var.serving.p99_duration_threshold_ms
  alerts_topic_arn                      = module.monitoring.alerts_topic_arn
  runbook_url                           = var.runbook_url
  logs_kms_key_arn                      = module.monitoring.kms_key_arn
  log_retention_days                    = var.retention.log_group_days
  permissions_boundary_arn              = var.permissions_boundary_arn
  tags                                  = local.tags
}

module "eventbridge" {
  source = "../eventbridge"

  name_prefix               = local.name_prefix
  schedules                 = var.schedules
  state_machine_arns        = module.step_functions.state_machine_arns
  state_machine_kms_key_arn = module.monitoring.kms_key_arn
  permissions_boundary_arn  = var.permissions_boundary_arn
  tags                      = local.tags
}
