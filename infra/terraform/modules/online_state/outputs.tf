output "table_name" {
  description = "Name of the online state table (partition key `card_id`, sort key `sk` = zero-padded ts_us `#` event_id)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the online state table."
  value       = aws_dynamodb_table.this.arn
}

output "ttl_attribute_name" {
  description = "Attribute DynamoDB TTL expires items by (epoch seconds)."
  value       = var.ttl_attribute_name
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key encrypting the table."
  value       = module.kms.key_arn
}
