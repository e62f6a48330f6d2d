data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region

  stream_name   = "${var.name_prefix}-card-authorization"
  bronze_prefix = "${var.lake_prefix}/bronze/"
  # Firehose evaluates the timestamp expression at arrival time, in UTC.
  delivery_prefix = "${var.lake_prefix}/bronze/streaming/card_authorization/ingest_dt=!{timestamp:yyyy/MM/dd/HH}/"
  # Outside the streaming prefix, so failed records never look like bronze input to the jobs.
  error_output_prefix = "${var.lake_prefix}/bronze/_errors/!{firehose:error-output-type}/ingest_dt=!{timestamp:yyyy/MM/dd/HH}/"
  log_group_name      = "/aws/kinesisfirehose/${local.stream_name}"
}

module "kms" {
  source = "../kms_key"

  alias_name              = "${var.name_prefix}-stream"
  description             = "Encrypts the ${local.stream_name} Kinesis data stream."
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = var.tags
}

resource "aws_kinesis_stream" "this" {
  name             = local.stream_name
  shard_count      = var.stream_mode == "PROVISIONED" ? var.shard_count : null
  retention_period = var.stream_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = module.kms.key_arn

  stream_mode_details {
    stream_mode = var.stream_mode
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "this" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.this.name
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "FirehoseAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name_prefix}-firehose"
  description          = "Firehose delivery from ${local.stream_name} into the lake's bronze prefix."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid    = "ReadSourceStream"
    effect = "Allow"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  statement {
    sid       = "DecryptSourceStream"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "LocateLakeBucket"
    effect    = "Allow"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [var.lake_bucket_arn]
  }

  statement {
    sid    = "WriteBronze"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = ["${var.lake_bucket_arn}/${local.bronze_prefix}*"]
  }

  statement {
    sid       = "EncryptBronzeObjects"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.lake_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    # With S3 Bucket Keys the encryption context is the bucket ARN.
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.lake_bucket_arn, "${var.lake_bucket_arn}/${local.bronze_prefix}*"]
    }
  }

  statement {
    sid       = "WriteDeliveryErrors"
    effect    = "Allow"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:log-stream:${aws_cloudwatch_log_stream.this.name}"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "firehose-delivery"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# No server-side encryption block: it cannot be enabled on a delivery stream whose source is a Kinesis stream.
# Records are encrypted in the stream (stream key) and in S3 (lake key, kms_key_arn below).
resource "aws_kinesis_firehose_delivery_stream" "this" {
  name        = "${var.name_prefix}-bronze"
  destination = "extended_s3"

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.this.arn
    role_arn           = aws_iam_role.this.arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.this.arn
    bucket_arn          = var.lake_bucket_arn
    prefix              = local.delivery_prefix
    error_output_prefix = local.error_output_prefix
    buffering_size      = var.buffering_size_mb
    buffering_interval  = var.buffering_interval_seconds
    compression_format  = "GZIP"
    kms_key_arn         = var.lake_kms_key_arn

    # One JSON record per line: bronze is newline-delimited JSON.
    processing_configuration {
      enabled = true

      processors {
        type = "AppendDelimiterToRecord"
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.this.name
      log_stream_name = aws_cloudwatch_log_stream.this.name
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}
