output "name_prefix" {
  description = "Prefix of the stack's resource names."
  value       = module.platform.name_prefix
}

output "lake_root" {
  description = "Lake root the jobs receive as `--lake-root`."
  value       = module.platform.lake_root
}

output "artifacts_bucket_name" {
  description = "Artifacts bucket; code goes to `code/<git sha>/`."
  value       = module.platform.artifacts_bucket_name
}

output "code_uri" {
  description = "Where the state machines expect this version's code."
  value       = module.platform.code_uri
}

output "kinesis_stream_name" {
  description = "Stream producers send card authorizations to."
  value       = module.platform.kinesis_stream_name
}

output "ecr_repository_url" {
  description = "Repository of the custom EMR image."
  value       = module.platform.ecr_repository_url
}

output "emr_application_id" {
  description = "ID of the EMR Serverless application."
  value       = module.platform.emr_application_id
}

output "state_machine_arns" {
  description = "ARNs of the `stream` and `daily` state machines."
  value       = module.platform.state_machine_arns
}

output "card_token_secret_name" {
  description = "Secret holding the card-token HMAC key."
  value       = module.platform.card_token_secret_name
}

output "alerts_topic_arn" {
  description = "Alerts topic."
  value       = module.platform.alerts_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.platform.dashboard_name
}

output "feature_store" {
  description = "Inputs of feature_store/register_feature_groups.py."
  value       = module.platform.feature_store
}

output "lease_table_name" {
  description = "Run-lease table (runbook: who holds the lease)."
  value       = module.platform.lease_table_name
}

output "delta_log_table_name" {
  description = "Delta S3DynamoDBLogStore table."
  value       = module.platform.delta_log_table_name
}

output "emr_job_role_arn" {
  description = "Job runtime role of the EMR Serverless jobs (`--execution-role-arn` of a manual job run)."
  value       = module.platform.emr_job_role_arn
}

output "log_group_names" {
  description = "CloudWatch log groups: `emr_jobs`, `state_machines`, `firehose`, `feature_serving`."
  value       = module.platform.log_group_names
}

output "event_id_index_table_name" {
  description = "Event-id index table of silver's dedupe (--event-id-index-table of silver_and_gold and the replay)."
  value       = module.platform.event_id_index_table_name
}

output "online_state_table_name" {
  description = "Request-time online state table."
  value       = module.platform.online_state_table_name
}

output "feature_serving" {
  description = "Feature-serving Lambda: function name and ARN, URL, role, log group, alarm names."
  value       = module.platform.feature_serving
}
