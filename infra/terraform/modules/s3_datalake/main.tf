data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition
  suffix     = "${local.account_id}-${local.region}"

  # Data buckets share one configuration; each gets its own lifecycle rules below.
  buckets = {
    lake      = "${var.name_prefix}-lake-${local.suffix}"
    artifacts = "${var.name_prefix}-artifacts-${local.suffix}"
  }

  # Prefix expirations per bucket; every bucket also expires noncurrent versions and stale uploads.
  expiration_rules = {
    lake = {
      bronze      = { prefix = "${var.lake_prefix}/bronze/", days = var.bronze_expiration_days }
      runs        = { prefix = "${var.lake_prefix}/_runs/", days = var.runs_expiration_days }
      dead_letter = { prefix = "${var.lake_prefix}/_dead_letter/", days = var.dead_letter_expiration_days }
    }
    artifacts = {}
  }
}

module "kms" {
  source = "../kms_key"

  alias_name              = "${var.name_prefix}-lake"
  description             = "Encrypts the ${var.name_prefix} lake and artifacts buckets (and what is written into them)."
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = var.tags
}

module "access_logs" {
  source = "../log_bucket"

  bucket_name        = "${var.name_prefix}-s3-access-logs-${local.suffix}"
  source_bucket_arns = [for name in values(local.buckets) : "arn:${local.partition}:s3:::${name}"]
  expiration_days    = var.access_log_expiration_days
  force_destroy      = var.force_destroy
  tags               = var.tags
}

# The access-log bucket moved into modules/log_bucket (shared with state_backend): same objects, new addresses.
moved {
  from = aws_s3_bucket.access_logs
  to   = module.access_logs.aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_ownership_controls.access_logs
  to   = module.access_logs.aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.access_logs
  to   = module.access_logs.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_versioning.access_logs
  to   = module.access_logs.aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.access_logs
  to   = module.access_logs.aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.access_logs
  to   = module.access_logs.aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_policy.access_logs
  to   = module.access_logs.aws_s3_bucket_policy.this
}

################################################################################
# Lake and artifacts buckets
################################################################################

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Single-region platform; cross-region replication is a disaster-recovery choice left to the fork.
  #checkov:skip=CKV2_AWS_62:Nothing consumes S3 event notifications: Firehose writes bronze and the schedules drive the jobs.
  for_each = local.buckets

  bucket        = each.value
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { DataClass = each.key })
}

module "hardening" {
  source   = "../s3_bucket_hardening"
  for_each = aws_s3_bucket.this

  bucket_id = each.value.id
}

# Ownership, public access block and versioning moved into modules/s3_bucket_hardening (shared by
# every bucket): same objects, new addresses.
moved {
  from = aws_s3_bucket_ownership_controls.this["lake"]
  to   = module.hardening["lake"].aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_ownership_controls.this["artifacts"]
  to   = module.hardening["artifacts"].aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.this["lake"]
  to   = module.hardening["lake"].aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_public_access_block.this["artifacts"]
  to   = module.hardening["artifacts"].aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_versioning.this["lake"]
  to   = module.hardening["lake"].aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_versioning.this["artifacts"]
  to   = module.hardening["artifacts"].aws_s3_bucket_versioning.this
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.kms.key_arn
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  for_each = aws_s3_bucket.this

  bucket        = each.value.id
  target_bucket = module.access_logs.bucket_id
  target_prefix = "${each.key}/"

  depends_on = [module.access_logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  dynamic "rule" {
    for_each = local.expiration_rules[each.key]

    content {
      id     = "expire-${rule.key}"
      status = "Enabled"

      filter {
        prefix = rule.value.prefix
      }

      expiration {
        days = rule.value.days
      }
    }
  }

  rule {
    id     = "noncurrent-versions-and-uploads"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [module.hardening]
}

module "secure_transport" {
  source   = "../s3_secure_transport_policy"
  for_each = aws_s3_bucket.this

  bucket_arn = each.value.arn
}

data "aws_iam_policy_document" "this" {
  for_each = aws_s3_bucket.this

  source_policy_documents = [module.secure_transport[each.key].json]

  statement {
    sid       = "DenyObjectsNotEncryptedWithTheLakeKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # Requests without an encryption header get the bucket default (the lake key) and are allowed.
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [module.kms.key_arn]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.this[each.key].json

  depends_on = [module.hardening]
}
