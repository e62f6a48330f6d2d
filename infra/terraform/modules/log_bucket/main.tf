data "aws_caller_identity" "current" {}

################################################################################
# S3 server access logging only delivers to SSE-S3 buckets, so this bucket is the one
# bucket of the platform without a customer-managed key.
################################################################################

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_145:S3 server access logging cannot deliver to an SSE-KMS bucket; this bucket uses SSE-S3.
  #checkov:skip=CKV_AWS_144:Access logs stay in the region of the buckets they describe.
  #checkov:skip=CKV2_AWS_62:No consumer of object-created events for access logs.
  #checkov:skip=CKV_AWS_18:This is the access-log bucket; logging it into itself would log its own deliveries forever.
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
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
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
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
    sid       = "S3ServerAccessLogsDelivery"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = var.source_bucket_arns
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  depends_on = [module.hardening]
}
