data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  suffix = "${data.aws_caller_identity.current.account_id}-${data.aws_region.current.region}"
}

module "kms" {
  source = "../kms_key"

  alias_name  = "${var.resource_prefix}-terraform-state"
  description = "Encrypts the ${var.resource_prefix} Terraform state and lock files."
  tags        = var.tags
}

module "access_logs" {
  source = "../log_bucket"

  bucket_name        = "${var.resource_prefix}-tfstate-logs-${local.suffix}"
  source_bucket_arns = [aws_s3_bucket.this.arn]
  expiration_days    = var.access_log_expiration_days
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

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:State stays in the account's home region; versioning and KMS protect it, replication is left to the fork.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of the state bucket.
  bucket = "${var.resource_prefix}-tfstate-${local.suffix}"
  tags   = var.tags

  lifecycle {
    prevent_destroy = true
  }
}

module "hardening" {
  source = "../s3_bucket_hardening"

  bucket_id = aws_s3_bucket.this.id
}

# Ownership, public access block and versioning moved into modules/s3_bucket_hardening (shared by
# every bucket): same objects, new addresses.
moved {
  from = aws_s3_bucket_ownership_controls.this
  to   = module.hardening.aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.this
  to   = module.hardening.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_versioning.this
  to   = module.hardening.aws_s3_bucket_versioning.this
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.kms.key_arn
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  bucket        = aws_s3_bucket.this.id
  target_bucket = module.access_logs.bucket_id
  target_prefix = "tfstate/"

  depends_on = [module.access_logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "noncurrent-state-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [module.hardening]
}

module "secure_transport" {
  source = "../s3_secure_transport_policy"

  bucket_arn = aws_s3_bucket.this.arn
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = [module.secure_transport.json]

  statement {
    sid       = "DenyStateNotEncryptedWithTheStateKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  depends_on = [module.hardening]
}
