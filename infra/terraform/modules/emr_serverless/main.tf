data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition

  application_name = "${var.name_prefix}-lakehouse"
  log_group_name   = "/aws/emr-serverless/${local.application_name}"
  lake_objects     = "${var.lake_bucket_arn}/${var.lake_prefix}"
  glue_arn_prefix  = "arn:${local.partition}:glue:${local.region}:${local.account_id}"

  # Prefixes the jobs write. "<p>*" rather than "<p>/*" also covers the "<p>_$folder$" markers EMRFS may create.
  write_prefixes = ["silver", "gold", "feature_store", "_state", "_runs", "_dead_letter"]

  delta_jar_dir = "/usr/share/aws/delta/lib"
  base_spark_defaults = {
    "spark.sql.extensions"                             = "io.delta.sql.DeltaSparkSessionExtension"
    "spark.sql.catalog.spark_catalog"                  = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    "spark.hadoop.hive.metastore.client.factory.class" = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
    "spark.sql.session.timeZone"                       = "UTC"
  }
  # Only the custom image has the S3DynamoDBLogStore jar and the project's Python 3.11 dependencies.
  custom_image_spark_defaults = {
    "spark.jars"                                              = join(",", [for jar in ["delta-spark", "delta-storage", "delta-storage-s3-dynamodb"] : "${local.delta_jar_dir}/${jar}.jar"])
    "spark.delta.logStore.s3.impl"                            = "io.delta.storage.S3DynamoDBLogStore"
    "spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName" = var.delta_log_table_name
    "spark.io.delta.storage.S3DynamoDBLogStore.ddb.region"    = local.region
    "spark.emr-serverless.driverEnv.PYSPARK_PYTHON"           = var.python_executable
    "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"    = var.python_executable
    "spark.executorEnv.PYSPARK_PYTHON"                        = var.python_executable
  }
  default_image_spark_defaults = {
    "spark.jars" = join(",", [for jar in ["delta-spark", "delta-storage"] : "${local.delta_jar_dir}/${jar}.jar"])
  }
  # tomap(): both branches of the conditional must have the same type.
  spark_defaults = merge(local.base_spark_defaults, var.image_tag == "" ? tomap(local.default_image_spark_defaults) : tomap(local.custom_image_spark_defaults))
}

################################################################################
# Custom image repository
################################################################################

resource "aws_ecr_repository" "this" {
  name                 = "${var.name_prefix}/emr-spark"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete_repository

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.lake_kms_key_arn
  }

  image_scanning_configuration {
    scan_on_push = true
  }

  tags = var.tags
}

data "aws_iam_policy_document" "repository" {
  statement {
    sid    = "EmrServerlessPullsImages"
    effect = "Allow"
    actions = [
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
    ]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    # A pattern, not this application's ARN: the repository must exist (and hold an image) before the application.
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:emr-serverless:${local.region}:${local.account_id}:/applications/*"]
    }
  }
}

resource "aws_ecr_repository_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy     = data.aws_iam_policy_document.repository.json
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest ${var.image_retention_count} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.image_retention_count
      }
      action = { type = "expire" }
    }]
  })
}

################################################################################
# Application
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

resource "aws_emrserverless_application" "this" {
  name          = local.application_name
  release_label = var.release_label
  type          = "spark"
  architecture  = "X86_64"

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  maximum_capacity {
    cpu    = var.max_cpu
    memory = var.max_memory
    disk   = var.max_disk
  }

  network_configuration {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  dynamic "image_configuration" {
    for_each = var.image_tag == "" ? [] : [var.image_tag]

    content {
      image_uri = "${aws_ecr_repository.this.repository_url}:${image_configuration.value}"
    }
  }

  runtime_configuration {
    classification = "spark-defaults"
    properties     = local.spark_defaults
  }

  monitoring_configuration {
    cloudwatch_logging_configuration {
      enabled                = true
      log_group_name         = aws_cloudwatch_log_group.this.name
      log_stream_name_prefix = "jobs"
      encryption_key_arn     = var.logs_kms_key_arn

      log_types {
        name   = "SPARK_DRIVER"
        values = ["STDOUT", "STDERR"]
      }

      log_types {
        name   = "SPARK_EXECUTOR"
        values = ["STDOUT", "STDERR"]
      }
    }

    s3_monitoring_configuration {
      log_uri            = "s3://${split(":::", var.artifacts_bucket_arn)[1]}/emr-logs/"
      encryption_key_arn = var.lake_kms_key_arn
    }
  }

  tags = var.tags

  # EMR Serverless validates that it can pull the image when the application is created or updated.
  depends_on = [aws_ecr_repository_policy.this]
}

################################################################################
# Job runtime role
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "EmrServerlessAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_emrserverless_application.this.arn]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name_prefix}-emr-job"
  description          = "Runtime role of the ${local.application_name} EMR Serverless jobs."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 43200
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ListLake"
    effect    = "Allow"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [var.lake_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.lake_prefix, "${var.lake_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadLake"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.lake_objects}/*"]
  }

  statement {
    sid    = "WriteJobOutputs"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = [for prefix in local.write_prefixes : "${local.lake_objects}/${prefix}*"]
  }

  statement {
    sid       = "ListCode"
    effect    = "Allow"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [var.artifacts_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["code/*", "emr-logs/*"]
    }
  }

  statement {
    sid       = "ReadCode"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.artifacts_bucket_arn}/code/*"]
  }

  statement {
    sid       = "WriteJobLogsToS3"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${var.artifacts_bucket_arn}/emr-logs/*"]
  }

  statement {
    sid       = "UseLakeKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.lake_kms_key_arn]
  }

  statement {
    sid       = "UseOnlineStoreKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.online_store_kms_key_arn]
  }

  statement {
    sid       = "UseLogsKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.logs_kms_key_arn]
  }

  statement {
    sid       = "UseDeltaLogTableKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.dynamodb_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "DecryptCardTokenKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.card_token_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadCardTokenKey"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.card_token_secret_arn]
  }

  statement {
    sid    = "DeltaLogStoreTable"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
    ]
    resources = [var.delta_log_table_arn]
  }

  # A job started by hand with --lease-table (a backfill; spark_jobs/run_lease.py) takes the pipeline lease the
  # state machines take: a conditional put, a consistent read of the holder, a delete conditioned on the holder.
  statement {
    sid    = "HoldRunLeaseForRunsByHand"
    effect = "Allow"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
    ]
    resources = [var.lease_table_arn]
  }

  # ... and asks whether the execution holding it is still live (RUNNING or PENDING_REDRIVE).
  statement {
    sid       = "DescribeLeaseHolder"
    effect    = "Allow"
    actions   = ["states:DescribeExecution"]
    resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${var.name_prefix}-*:*"]
  }

  # The dedupe's event-id index (spark_jobs/event_id_index.py): lookups (BatchGetItem, the completeness marker's
  # GetItem) and set-adds (UpdateItem ADD, the marker's UpdateItem SET). Never Put, Delete or Scan.
  statement {
    sid    = "ReadAndAddEventIdIndex"
    effect = "Allow"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:UpdateItem",
    ]
    resources = [var.event_id_index_table_arn]
  }

  # The ingestion job writes silver's events into the online state, removes quarantined ones and resyncs.
  statement {
    sid    = "KeepOnlineStateInLine"
    effect = "Allow"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
    ]
    resources = [var.online_state_table_arn]
  }

  statement {
    sid       = "UseOnlineStateKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.online_state_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid    = "RegisterTablesInGlue"
    effect = "Allow"
    actions = [
      "glue:BatchGetPartition",
      "glue:CreateTable",
      "glue:DeleteTable",
      "glue:GetDatabase",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetUserDefinedFunctions",
      "glue:UpdateTable",
    ]
    resources = concat(
      ["${local.glue_arn_prefix}:catalog"],
      [for db in var.glue_database_names : "${local.glue_arn_prefix}:database/${db}"],
      [for db in var.glue_database_names : "${local.glue_arn_prefix}:table/${db}/*"],
      [for db in var.glue_database_names : "${local.glue_arn_prefix}:userDefinedFunction/${db}/*"],
    )
  }

  # Spark's Hive client opens the `default` database when the session starts.
  statement {
    sid    = "OpenDefaultGlueDatabase"
    effect = "Allow"
    actions = [
      "glue:CreateDatabase",
      "glue:GetDatabase",
      "glue:GetUserDefinedFunctions",
    ]
    resources = [
      "${local.glue_arn_prefix}:catalog",
      "${local.glue_arn_prefix}:database/default",
      "${local.glue_arn_prefix}:userDefinedFunction/default/*",
    ]
  }

  statement {
    sid    = "WriteFeatureGroups"
    effect = "Allow"
    actions = [
      "sagemaker:BatchGetRecord",
      "sagemaker:BatchWriteRecord",
      "sagemaker:DeleteRecord",
      "sagemaker:DescribeFeatureGroup",
      "sagemaker:GetRecord",
      "sagemaker:PutRecord",
    ]
    # the card and the merchant feature groups (ingestion writes both; the replay re-sends to either)
    resources = [
      for prefix in [var.feature_group_name_prefix, var.merchant_feature_group_name_prefix] :
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:feature-group/${prefix}*"
    ]
  }

  statement {
    sid       = "WriteJobLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "FindJobLogGroup"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "emr-job-runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
