module "kms" {
  source = "../kms_key"

  alias_name              = "${var.name_prefix}-card-token"
  description             = "Encrypts the ${var.name_prefix} card-token HMAC key secret."
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = var.tags
}

# The secret is created without a value: Terraform never sees the key, so it is neither in the repository nor in
# the state. The deploy workflow stores a random 256-bit hex key once (when the secret has no value yet);
# docs/deploy.md shows how to set it by hand instead.
resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Rotating the HMAC key changes every card token, so it is a planned re-tokenization, not an automatic rotation.
  name                    = "${var.name_prefix}/card-token-hmac-key"
  description             = "Hex-encoded HMAC-SHA256 key that turns card numbers into card tokens."
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}
