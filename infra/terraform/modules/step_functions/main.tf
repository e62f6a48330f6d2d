data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition

  state_machine_names = { for name in var.state_machine_names : name => "${var.name_prefix}-${name}" }

  # Exactly the placeholders of state_machines/*.asl.json (tests/infra compares the two sets). The local
  # runner fills the same names from its own config with the local backend.
  template_variables = {
    aws_region            = local.region
    emr_application_id    = var.emr_application_id
    emr_job_role_arn      = var.emr_job_role_arn
    lake_root             = var.lake_root
    code_uri              = var.code_uri
    lease_table_name      = var.lease_table_name
    alerts_topic_arn      = var.alerts_topic_arn
    feature_store_backend = "sagemaker"
    delta_log_table_name  = var.delta_log_table_name
    online_state_table    = var.online_state_table_name
    # silver_and_gold checks the lookback against the stream's buffering and retention (exit 2 otherwise)
    bronze_lookback_hours      = coalesce(var.bronze_lookback_hours, var.stream_retention_hours)
    firehose_buffering_seconds = var.firehose_buffering_seconds
    stream_retention_hours     = var.stream_retention_hours
    event_id_index_table       = var.event_id_index_table_name
    glue_database              = var.glue_database
    card_token_secret_id       = var.card_token_secret_id
    log_group_name             = var.job_log_group_name
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/vendedlogs/states/${var.name_prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.monitoring_kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "StepFunctionsAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for name in values(local.state_machine_names) : "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${name}"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name_prefix}-state-machines"
  description          = "Runs the ${var.name_prefix} state machines: EMR Serverless jobs, the run lease, alerts."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "StartJobRuns"
    effect    = "Allow"
    actions   = ["emr-serverless:StartJobRun"]
    resources = [var.emr_application_arn]
  }

  statement {
    sid       = "FollowJobRuns"
    effect    = "Allow"
    actions   = ["emr-serverless:CancelJobRun", "emr-serverless:GetJobRun"]
    resources = ["${var.emr_application_arn}/jobruns/*"]
  }

  statement {
    sid       = "PassJobRoleToEmrServerless"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [var.emr_job_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }

  # The managed rule behind the .sync integration.
  statement {
    sid       = "ManagedRuleForJobRunSync"
    effect    = "Allow"
    actions   = ["events:DescribeRule", "events:PutRule", "events:PutTargets"]
    resources = ["arn:${local.partition}:events:${local.region}:${local.account_id}:rule/StepFunctionsGetEventsForEMRServerlessJobRule"]
  }

  statement {
    sid       = "RunLease"
    effect    = "Allow"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [var.lease_table_arn]
  }

  statement {
    sid       = "InspectLeaseHolder"
    effect    = "Allow"
    actions   = ["states:DescribeExecution"]
    resources = [for name in values(local.state_machine_names) : "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${name}:*"]
  }

  statement {
    sid       = "PublishAlerts"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [var.alerts_topic_arn]
  }

  statement {
    sid       = "UseAlertsLeaseAndStateKeys"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.monitoring_kms_key_arn, var.lease_table_kms_key_arn]
  }

  # CloudWatch Logs vended-log delivery APIs do not support resource-level permissions.
  statement {
    sid    = "DeliverExecutionLogs"
    effect = "Allow"
    actions = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    resources = ["*"]
  }

  # X-Ray trace APIs do not support resource-level permissions.
  statement {
    sid    = "WriteTraces"
    effect = "Allow"
    actions = [
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "state-machines"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_sfn_state_machine" "this" {
  for_each = local.state_machine_names

  name       = each.value
  type       = "STANDARD"
  role_arn   = aws_iam_role.this.arn
  definition = templatefile("${var.definitions_dir}/${each.key}.asl.json", local.template_variables)

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this.arn}:*"
    include_execution_data = true
    level                  = var.log_level
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = var.monitoring_kms_key_arn
    kms_data_key_reuse_period_seconds = 300
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}
