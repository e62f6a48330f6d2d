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
  #checkov:skip=CKV2_AWS_57:A new key version is added to the secret's JSON by hand (docs/runbook.md, Rotating the card-token key), keeping the old versions the dedupe compares under; no rotation Lambda.
  name                    = "${var.name_prefix}/card-token-hmac-key"
  description             = "HMAC-SHA256 card-token key: one hex key (version 0), or every key version as JSON {\"current\": k, \"keys\": {...}}."
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}
