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
  value       = "s3://${module.s3_datalake.artifacts_bucket_name}/code/${var.code_version}"
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

output "state_machine_arns" {
  description = "ARNs of the `stream` and `daily` state machines."
  value       = module.step_functions.state_machine_arns
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
  description = "What feature_store/register_feature_groups.py needs to create `card-features-v{N}`."
  value = {
    role_arn                  = module.sagemaker_featurestore.role_arn
    online_store_kms_key_arn  = module.sagemaker_featurestore.online_store_kms_key_arn
    offline_store_kms_key_arn = module.sagemaker_featurestore.offline_store_kms_key_arn
    offline_store_s3_uri      = module.sagemaker_featurestore.offline_store_s3_uri
    glue_database             = module.sagemaker_featurestore.glue_database_name
    feature_group_name_prefix = module.sagemaker_featurestore.feature_group_name_prefix
  }
}
