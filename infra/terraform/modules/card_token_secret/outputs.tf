output "secret_arn" {
  description = "ARN of the card-token HMAC key secret."
  value       = aws_secretsmanager_secret.this.arn
}

output "secret_name" {
  description = "Name of the secret; the jobs get it as `--card-token-secret-id`."
  value       = aws_secretsmanager_secret.this.name
}

output "kms_key_arn" {
  description = "ARN of the key encrypting the secret."
  value       = module.kms.key_arn
}
