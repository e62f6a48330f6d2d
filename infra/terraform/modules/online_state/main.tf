module "kms" {
  source = "../kms_key"

  alias_name              = "${var.name_prefix}-online-state"
  description             = "Encrypts the ${var.name_prefix} request-time online state table."
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = var.tags
}

# One item per (card, event): sk = zero-padded ts_us + "#" + event_id, so a Query on card_id returns a card's
# events ordered by ts_us then event_id, and each authorization is its own put (no read-modify-write per card).
# TTL only cleans up: reads filter by event time and never rely on expired items being gone.
resource "aws_dynamodb_table" "this" {
  name                        = "${var.name_prefix}-online-state"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "card_id"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "card_id"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = var.ttl_attribute_name
    enabled        = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = module.kms.key_arn
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = var.tags
}
