module "kms" {
  source = "../kms_key"

  alias_name              = "${var.name_prefix}-dynamodb"
  description             = "Encrypts the ${var.name_prefix} run-lease, Delta log-store and event-id index tables."
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = var.tags
}

# One item per lease: the state machines put `{lease_id, holder}` with attribute_not_exists.
resource "aws_dynamodb_table" "lease" {
  name                        = "${var.name_prefix}-run-lease"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "lease_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "lease_id"
    type = "S"
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

# The dedupe's exact lookup at any distance (spark_jobs/event_id_index.py): one item per silver event_id holding
# the set of days (`days`, SS) silver may hold it at, added with UpdateItem ADD before each silver commit. No TTL:
# an id must be found however old it is. Stored size per event: about 122 bytes plus the id's length (DynamoDB's
# 100-byte item overhead + the names `event_id` 8 and `days` 4 + one 10-byte date; 10 more per extra day).
resource "aws_dynamodb_table" "event_id_index" {
  name                        = "${var.name_prefix}-event-id-index"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "event_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "event_id"
    type = "S"
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

# Delta Lake S3DynamoDBLogStore: one item per commit file, expired by DynamoDB TTL.
resource "aws_dynamodb_table" "delta_log" {
  name                        = "${var.name_prefix}-delta-log"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "tablePath"
  range_key                   = "fileName"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "tablePath"
    type = "S"
  }

  attribute {
    name = "fileName"
    type = "S"
  }

  ttl {
    attribute_name = "expireTime"
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
