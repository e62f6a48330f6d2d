output "name_prefix" {
  description = "Prefix of the stack's resource names (`<project>-<environment>`)."
  value       = local.name_prefix
}

output "lake_root" {
  description = "Lake root the jobs receive as `--lake-root`."
  value       = module.s3_datalake.lake_root
}

output "lake_bucket_name" {
  description = "Name of the lake bucket."
  value       = module.s3_datalake.lake_bucket_name
}

output "artifacts_bucket_name" {
  description = "Name of the artifacts bucket; the deploy workflow uploads code to `code/<git sha>/`."
  value       = module.s3_datalake.artifacts_bucket_name
}

output "code_uri" {
  description = "Where the state machines expect this version's code."
  value       = "s3://${module.s3_datalake.artifacts_bucket_name}/${local.code_prefix}"
}

output "kinesis_stream_name" {
  description = "Stream producers send card authorizations to."
  value       = module.kinesis_firehose.stream_name
}

output "ecr_repository_url" {
  description = "Repository of the custom EMR image."
  value       = module.emr_serverless.ecr_repository_url
}

output "emr_application_id" {
  description = "ID of the EMR Serverless application."
  value       = module.emr_serverless.application_id
}

output "emr_job_role_arn" {
  description = "Job runtime role of the EMR Serverless jobs."
  value       = module.emr_serverless.job_role_arn
}

output "lease_table_name" {
  description = "DynamoDB table of the run lease (runbook: who holds the lease, releasing a stale one)."
  value       = module.dynamodb.lease_table_name
}

output "delta_log_table_name" {
  description = "DynamoDB table of Delta's S3DynamoDBLogStore (what a replay or backfill outside the state machines must use)."
  value       = module.dynamodb.delta_log_table_name
}

output "log_group_names" {
  description = "CloudWatch log groups by source: `emr_jobs` (driver logs), `state_machines`, `firehose`, `feature_serving`."
  value = {
    emr_jobs        = module.emr_serverless.log_group_name
    state_machines  = module.step_functions.log_group_name
    firehose        = module.kinesis_firehose.log_group_name
    feature_serving = module.feature_serving.log_group_name
  }
}

output "state_machine_arns" {
  description = "ARNs of the `stream` and `daily` state machines."
  value       = module.step_functions.state_machine_arns
}

output "event_id_index_table_name" {
  description = "DynamoDB event-id index of silver's dedupe (key `event_id`, attribute `days`); pass it as --event-id-index-table."
  value       = module.dynamodb.event_id_index_table_name
}

output "online_state_table_name" {
  description = "DynamoDB table of the request-time online state (keys `card_id`, `sk`; TTL `expires_at`)."
  value       = module.online_state.table_name
}

output "online_state_table_arn" {
  description = "ARN of the request-time online state table."
  value       = module.online_state.table_arn
}

output "feature_serving" {
  description = "The request-time feature-serving Lambda: function name and ARN, URL (null unless enabled), role, log group, alarms."
  value = {
    function_name  = module.feature_serving.function_name
    function_arn   = module.feature_serving.function_arn
    function_url   = module.feature_serving.function_url
    role_arn       = module.feature_serving.role_arn
    log_group_name = module.feature_serving.log_group_name
    alarm_names    = module.feature_serving.alarm_names
  }
}

output "card_token_secret_name" {
  description = "Secret holding the card-token HMAC key (hex)."
  value       = module.card_token_secret.secret_name
}

output "alerts_topic_arn" {
  description = "Alerts topic."
  value       = module.monitoring.alerts_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the stack."
  value       = module.monitoring.dashboard_name
}

output "feature_store" {
  description = "What feature_store/register_feature_groups.py needs to create `card-features-v{N}` and `merchant-features-v{N}`."
  value = {
    role_arn                  = module.sagemaker_featurestore.role_arn
    online_store_kms_key_arn  = module.sagemaker_featurestore.online_store_kms_key_arn
    offline_store_kms_key_arn = module.sagemaker_featurestore.offline_store_kms_key_arn
    offline_store_s3_uri      = module.sagemaker_featurestore.offline_store_s3_uri
    glue_database             = module.sagemaker_featurestore.glue_database_name
    feature_group_name_prefix = module.sagemaker_featurestore.feature_group_name_prefix
    # the merchant feature groups (destroy.yml deletes the groups of both prefixes)
    merchant_feature_group_name_prefix = module.sagemaker_featurestore.merchant_feature_group_name_prefix
  }
}
