data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition

  function_name  = "${var.name_prefix}-feature-serving"
  log_group_name = "/aws/lambda/${local.function_name}"
  # arn:aws:s3:::bucket -> bucket
  artifacts_bucket_name = split(":::", var.artifacts_bucket_arn)[1]

  # The only objects the function reads: the FX reference data and, when scoring, the model artifact.
  readable_objects = concat(
    ["${var.artifacts_bucket_arn}/${var.fx_rates_key}"],
    var.model_key == null ? [] : ["${var.artifacts_bucket_arn}/${var.model_key}"],
  )

  environment = merge(
    {
      ONLINE_STATE_TABLE   = var.online_state_table_name
      CARD_TOKEN_SECRET_ID = var.card_token_secret_id
      FX_RATES_URI         = "s3://${local.artifacts_bucket_name}/${var.fx_rates_key}"
      FEATURE_SET_VERSION  = tostring(var.feature_set_version)
      # merchant features: the merchant group's online record of the authorization's merchant and the
      # published-day marker, in one BatchGetRecord
      MERCHANT_FEATURE_GROUP = var.merchant_feature_group_name
    },
    var.model_key == null ? {} : { MODEL_URI = "s3://${local.artifacts_bucket_name}/${var.model_key}" },
  )

  alarm_actions = [var.alerts_topic_arn]
}

################################################################################
# Network: HTTPS to the VPC endpoints it needs, nothing else
################################################################################

resource "aws_security_group" "this" {
  name        = local.function_name
  description = "Feature-serving Lambda: HTTPS out to the DynamoDB and S3 gateway endpoints and the interface endpoints only."
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = local.function_name })
}

# DynamoDB (online state) and S3 (FX rates, model) through their gateway endpoints.
resource "aws_vpc_security_group_egress_rule" "to_gateway_endpoints" {
  for_each = var.gateway_endpoint_prefix_list_ids

  security_group_id = aws_security_group.this.id
  description       = "HTTPS to the ${each.key} gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = each.value
}

# Secrets Manager (card-token HMAC key) through its interface endpoint.
resource "aws_vpc_security_group_egress_rule" "to_interface_endpoints" {
  security_group_id            = aws_security_group.this.id
  description                  = "HTTPS to the interface endpoints (Secrets Manager)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = var.interface_endpoints_security_group_id
}

# The interface endpoints' group admits this function (it admits the EMR workers already).
resource "aws_vpc_security_group_ingress_rule" "this" {
  security_group_id            = var.interface_endpoints_security_group_id
  description                  = "HTTPS from the feature-serving Lambda"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.this.id
}

################################################################################
# Execution role: exactly the table, key, secret and objects it uses
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    # The account only: AWS's own Lambda trust examples use aws:SourceAccount, and the role is passed to this
    # one function by the deploy role (iam:PassRole scoped to the stack's roles and lambda.amazonaws.com).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = local.function_name
  description          = "Execution role of the ${local.function_name} Lambda (request-time features)."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  # Reads a card's window, writes the served authorization back (conditional transaction: event + marker).
  statement {
    sid    = "ReadAndWriteBackOnlineState"
    effect = "Allow"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:TransactWriteItems",
    ]
    resources = [var.online_state_table_arn]
  }

  statement {
    sid       = "UseOnlineStateKeyThroughDynamoDb"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.online_state_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }

  # The environment variables are encrypted with the same key; Lambda decrypts them for this function only.
  statement {
    sid       = "DecryptOwnEnvironment"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.online_state_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:LambdaFunctionName"
      values   = [local.function_name]
    }
  }

  # Merchant features: BatchGetRecord of the merchant group only (the merchant's record and the published-day
  # marker in one call; no write, no other group), through the
  # sagemaker.featurestore-runtime interface endpoint; its online store is encrypted with the Feature Store key.
  statement {
    sid       = "ReadMerchantFeatureGroup"
    effect    = "Allow"
    actions   = ["sagemaker:BatchGetRecord"]
    resources = ["arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:feature-group/${var.merchant_feature_group_name}"]
  }

  statement {
    sid       = "DecryptMerchantFeatureRecords"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.online_store_kms_key_arn]
  }

  statement {
    sid       = "ReadCardTokenKey"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.card_token_secret_arn]
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
    sid       = "ReadReferenceDataAndModel"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = local.readable_objects
  }

  statement {
    sid       = "DecryptArtifactsThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.artifacts_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # A function in a VPC manages its own network interfaces in the given subnets and security group.
  statement {
    sid     = "CreateNetworkInterfacesInTheServingSubnets"
    effect  = "Allow"
    actions = ["ec2:CreateNetworkInterface"]
    resources = concat(
      ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*", aws_security_group.this.arn],
      [for subnet_id in var.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${subnet_id}"],
    )
  }

  statement {
    sid    = "ManageOwnNetworkInterfaces"
    effect = "Allow"
    actions = [
      "ec2:AssignPrivateIpAddresses",
      "ec2:DeleteNetworkInterface",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:Vpc"
      values   = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/${var.vpc_id}"]
    }
  }

  statement {
    sid       = "DescribeNetworkInterfaces"
    effect    = "Allow"
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "feature-serving"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

data "aws_iam_policy_document" "tracing" {
  statement {
    sid       = "WriteTraces"
    effect    = "Allow"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "tracing" {
  count = var.enable_xray ? 1 : 0

  name   = "xray-tracing"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.tracing.json
}

################################################################################
# Function: the lakehouse.zip the EMR jobs use (spark_jobs/ and feature_store/ at its root)
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by the scoring service; a failed request is returned to the caller, there is no asynchronous event to dead-letter.
  #checkov:skip=CKV_AWS_272:The code is the lakehouse.zip the deploy workflow uploads to the KMS-encrypted, versioned artifacts bucket that only the deploy role writes; there is no signing profile.
  function_name                  = local.function_name
  description                    = "Request-time card features: computes the registry's features at an authorization's own time from the online state."
  role                           = aws_iam_role.this.arn
  runtime                        = "python3.11"
  handler                        = "feature_store.serving_lambda.handler"
  architectures                  = ["x86_64"]
  s3_bucket                      = local.artifacts_bucket_name
  s3_key                         = var.code_key
  memory_size                    = var.memory_size
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.online_state_kms_key_arn

  environment {
    variables = local.environment
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.this.id]
  }

  tracing_config {
    mode = var.enable_xray ? "Active" : "PassThrough"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this.name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}

################################################################################
# Invocation: IAM-authenticated only
################################################################################

resource "aws_lambda_permission" "invoke" {
  for_each = toset(var.invoker_principal_arns)

  statement_id  = "Invoke-${substr(sha256(each.value), 0, 16)}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = each.value
}

# Optional HTTPS endpoint; AWS_IAM means every request is SigV4-signed by a principal allowed below.
resource "aws_lambda_function_url" "this" {
  count = var.create_function_url ? 1 : 0

  function_name      = aws_lambda_function.this.function_name
  authorization_type = "AWS_IAM"
}

resource "aws_lambda_permission" "invoke_url" {
  for_each = var.create_function_url ? toset(var.invoker_principal_arns) : toset([])

  statement_id           = "InvokeUrl-${substr(sha256(each.value), 0, 16)}"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = each.value
  function_url_auth_type = "AWS_IAM"
}

################################################################################
# Alarms to the alerts topic, each linking to its runbook section
################################################################################

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${local.function_name}-errors"
  alarm_description   = "The feature-serving function failed requests (Errors > 0). Runbook: ${var.runbook_url}#prefix-feature-serving-errors"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "p99_duration" {
  alarm_name          = "${local.function_name}-p99-duration"
  alarm_description   = "p99 duration of the feature-serving function above ${var.p99_duration_threshold_ms} ms for 3 of 5 minutes. Runbook: ${var.runbook_url}#prefix-feature-serving-p99-duration"
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.p99_duration_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
