output "lease_table_name" {
  description = "Name of the run-lease table (partition key `lease_id`)."
  value       = aws_dynamodb_table.lease.name
}

output "lease_table_arn" {
  description = "ARN of the run-lease table."
  value       = aws_dynamodb_table.lease.arn
}

output "delta_log_table_name" {
  description = "Name of the Delta S3DynamoDBLogStore table (keys `tablePath`, `fileName`; TTL `expireTime`)."
  value       = aws_dynamodb_table.delta_log.name
}

output "delta_log_table_arn" {
  description = "ARN of the Delta S3DynamoDBLogStore table."
  value       = aws_dynamodb_table.delta_log.arn
}

output "event_id_index_table_name" {
  description = "Name of the event-id index table (partition key `event_id`; attribute `days`, a string set of silver days)."
  value       = aws_dynamodb_table.event_id_index.name
}

output "event_id_index_table_arn" {
  description = "ARN of the event-id index table."
  value       = aws_dynamodb_table.event_id_index.arn
}

output "kms_key_arn" {
  description = "ARN of the key encrypting the module's tables."
  value       = module.kms.key_arn
}
