data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id      = data.aws_caller_identity.current.account_id
  region          = data.aws_region.current.region
  partition       = data.aws_partition.current.partition
  offline_prefix  = "${var.lake_prefix}/feature_store/offline"
  glue_arn_prefix = "arn:${local.partition}:glue:${local.region}:${local.account_id}"
}

module "kms" {
  source = "../kms_key"

  alias_name              = "${var.name_prefix}-feature-store-online"
  description             = "Encrypts the online store of the ${var.name_prefix} feature groups."
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = var.tags
}

# The role SageMaker Feature Store assumes to write the offline store and its Glue tables. The feature groups
# themselves are created by feature_store/register_feature_groups.py in the deploy workflow.
data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "SageMakerAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name_prefix}-feature-store"
  description          = "SageMaker Feature Store offline store writer for the ${var.feature_group_name_prefix}* and ${var.merchant_feature_group_name_prefix}* feature groups."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "LocateLakeBucket"
    effect    = "Allow"
    actions   = ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"]
    resources = [var.lake_bucket_arn]
  }

  statement {
    sid       = "WriteOfflineStore"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"]
    resources = ["${var.lake_bucket_arn}/${local.offline_prefix}/*"]
  }

  statement {
    sid       = "EncryptOfflineStore"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [var.offline_store_kms_key_arn]
  }

  statement {
    sid    = "MaintainOfflineStoreTables"
    effect = "Allow"
    actions = [
      "glue:CreateTable",
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:UpdateTable",
    ]
    resources = [
      "${local.glue_arn_prefix}:catalog",
      "${local.glue_arn_prefix}:database/${var.glue_database_name}",
      "${local.glue_arn_prefix}:table/${var.glue_database_name}/*",
    ]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "feature-store-offline-store"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
