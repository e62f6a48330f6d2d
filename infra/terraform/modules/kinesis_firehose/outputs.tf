output "stream_name" {
  description = "Name of the Kinesis data stream producers write card authorizations to."
  value       = aws_kinesis_stream.this.name
}

output "stream_arn" {
  description = "ARN of the Kinesis data stream."
  value       = aws_kinesis_stream.this.arn
}

output "stream_kms_key_arn" {
  description = "ARN of the key encrypting the stream (producers need kms:GenerateDataKey on it)."
  value       = module.kms.key_arn
}

output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "delivery_stream_arn" {
  description = "ARN of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "bronze_delivery_prefix" {
  description = "S3 key prefix (with Firehose expressions) of delivered bronze objects."
  value       = local.delivery_prefix
}

output "log_group_name" {
  description = "CloudWatch log group of Firehose delivery errors."
  value       = aws_cloudwatch_log_group.this.name
}
