################################################################################
# The transport rules every bucket policy of the platform starts from: no plain HTTP, no TLS older than 1.2.
# Data only (no resource): each caller merges `json` into its own bucket policy with `source_policy_documents`.
################################################################################

locals {
  # The bucket itself (ListBucket, policy calls) and every object in it.
  bucket_and_objects = [var.bucket_arn, "${var.bucket_arn}/*"]
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = local.bucket_and_objects

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOutdatedTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = local.bucket_and_objects

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}
