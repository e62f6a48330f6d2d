data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition

  alarm_actions = [aws_sns_topic.this.arn]
  emf_dimension = { silver = { Stage = var.silver_stage } }
}

# One key for the platform's operational data: CloudWatch log groups, the alerts topic and the state machines.
module "kms" {
  source = "../kms_key"

  alias_name              = "${var.name_prefix}-monitoring"
  description             = "Encrypts the ${var.name_prefix} log groups, alerts topic and state machines."
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = var.tags

  service_principal_statements = [
    {
      sid      = "CloudWatchLogsEncryptsLogGroups"
      services = ["logs.${local.region}.amazonaws.com"]
      actions = [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
      ]
      conditions = [{
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
      }]
    },
    {
      # The state machines are encrypted with this key and log execution data into a log group encrypted with it:
      # CloudWatch Logs' vended-log delivery decrypts the execution data to deliver it (Step Functions docs,
      # "Data at rest encryption", logging with a customer managed key). Its requests carry the account and a
      # logs ARN of this account and region as source (CloudWatch Logs docs, vended logs, key policy example).
      sid      = "LogDeliveryReadsEncryptedStateMachineLogs"
      services = ["delivery.logs.amazonaws.com"]
      actions  = ["kms:Decrypt"]
      conditions = [
        { test = "StringEquals", variable = "aws:SourceAccount", values = [local.account_id] },
        { test = "ArnLike", variable = "aws:SourceArn", values = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"] },
      ]
    },
    {
      sid      = "CloudWatchAlarmsPublishToEncryptedTopic"
      services = ["cloudwatch.amazonaws.com"]
      actions  = ["kms:Decrypt", "kms:GenerateDataKey"]
    },
  ]
}

################################################################################
# Alerts topic
################################################################################

resource "aws_sns_topic" "this" {
  name              = "${var.name_prefix}-alerts"
  display_name      = "${var.name_prefix} card-feature platform alerts"
  kms_master_key_id = module.kms.key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "AccountPrincipalsPublishThroughIam"
    effect    = "Allow"
    actions   = ["sns:GetTopicAttributes", "sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish", "sns:Subscribe"]
    resources = [aws_sns_topic.this.arn]

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
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "this" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

################################################################################
# Alarms
################################################################################

resource "aws_cloudwatch_metric_alarm" "execution_failed" {
  for_each = var.state_machine_arns

  alarm_name          = "${var.name_prefix}-${each.key}-execution-failed"
  alarm_description   = "A ${each.key} execution failed, timed out or was aborted. Runbook: ${var.runbook_url}#prefix-stream-execution-failed-prefix-daily-execution-failed"
  comparison_operator = "GreaterThanOrEqualToThreshold"
  evaluation_periods  = 1
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "unsuccessful"
    expression  = "failed + timed_out + aborted"
    label       = "Unsuccessful executions"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { failed = "ExecutionsFailed", timed_out = "ExecutionsTimedOut", aborted = "ExecutionsAborted" }

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/States"
        metric_name = metric_query.value
        dimensions  = { StateMachineArn = each.value }
        period      = 300
        stat        = "Sum"
      }
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "firehose_delivery_failed" {
  alarm_name          = "${var.name_prefix}-firehose-delivery-failed"
  alarm_description   = "Firehose failed to put objects into the bronze prefix (see its error log group and bronze/_errors/). Runbook: ${var.runbook_url}#prefix-firehose-delivery-failed"
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.Success"
  dimensions          = { DeliveryStreamName = var.delivery_stream_name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "firehose_data_freshness" {
  alarm_name          = "${var.name_prefix}-firehose-data-stale"
  alarm_description   = "Records wait in Firehose longer than ${var.data_freshness_threshold_seconds} seconds. Runbook: ${var.runbook_url}#prefix-firehose-data-stale"
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.DataFreshness"
  dimensions          = { DeliveryStreamName = var.delivery_stream_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.data_freshness_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "kinesis_iterator_age" {
  alarm_name          = "${var.name_prefix}-kinesis-iterator-age"
  alarm_description   = "Firehose lags the card-authorization stream by more than ${var.iterator_age_threshold_ms} ms. Runbook: ${var.runbook_url}#prefix-kinesis-iterator-age"
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = var.kinesis_stream_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.iterator_age_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Counts the jobs emit where a single one needs a person (a page, not a trend): each alarm fires when its metric
# reaches 1 in a 10-minute period. The key is the alarm name's suffix and its runbook section (#prefix-<key>).
locals {
  count_alarms = {
    "feature-store-dead-letters" = {
      stage     = var.feature_store_stage
      metric    = "FeatureStoreDeadLetters"
      statistic = "Sum"
      what      = "Feature Store rejected records; they are in <lake-root>/_dead_letter/feature_store/."
    }
    "changed-bronze-files" = {
      stage     = var.silver_stage
      metric    = "ChangedBronzeFiles"
      statistic = "Maximum"
      what      = "A bronze file changed (grew or was overwritten) after silver processed it: its new content is not in silver."
    }
    "replanned-batch" = {
      stage     = var.silver_stage
      metric    = "ReplannedBatches"
      statistic = "Maximum"
      what      = "A resumed bronze batch was re-planned: its files or reference data (FX rates, card-token keys, size caps) changed after it was planned."
    }
    "changed-chargeback-files" = {
      stage     = var.chargebacks_stage
      metric    = "ChangedChargebackFiles"
      statistic = "Maximum"
      what      = "A chargeback feed file changed after it was ingested: its new lines are in no table."
    }
    "chargebacks-quarantined" = {
      stage     = var.chargebacks_stage
      metric    = "ChargebacksQuarantined"
      statistic = "Sum"
      what      = "Chargeback feed records were quarantined (silver/label_quarantine): their labels reach neither the datasets nor the merchant risk features."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "job_count" {
  for_each = local.count_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = "${each.value.what} Runbook: ${var.runbook_url}#prefix-${each.key}"
  namespace           = var.metrics_namespace
  metric_name         = each.value.metric
  dimensions          = { Stage = each.value.stage }
  statistic           = each.value.statistic
  period              = 600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# The three alarms that were single resources before the map: moved, so a deployed stack keeps them.
moved {
  from = aws_cloudwatch_metric_alarm.feature_store_dead_letters
  to   = aws_cloudwatch_metric_alarm.job_count["feature-store-dead-letters"]
}

moved {
  from = aws_cloudwatch_metric_alarm.changed_bronze_files
  to   = aws_cloudwatch_metric_alarm.job_count["changed-bronze-files"]
}

moved {
  from = aws_cloudwatch_metric_alarm.replanned_batch
  to   = aws_cloudwatch_metric_alarm.job_count["replanned-batch"]
}

resource "aws_cloudwatch_metric_alarm" "quarantine_rate" {
  alarm_name          = "${var.name_prefix}-quarantine-rate"
  alarm_description   = "More than ${var.quarantine_rate_threshold_percent}% of the bronze records read were quarantined. Runbook: ${var.runbook_url}#prefix-quarantine-rate"
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 1
  threshold           = var.quarantine_rate_threshold_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "quarantine_rate"
    expression  = "IF(records_read > 0, 100 * quarantined / records_read, 0)"
    label       = "Quarantined records (%)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { quarantined = "QuarantinedRecords", records_read = "RecordsRead" }

    content {
      id = metric_query.key

      metric {
        namespace   = var.metrics_namespace
        metric_name = metric_query.value
        dimensions  = local.emf_dimension.silver
        period      = 600
        stat        = "Sum"
      }
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "silence" {
  count = var.enable_silence_alarm ? 1 : 0

  alarm_name          = "${var.name_prefix}-silence"
  alarm_description   = "The silver job accepted no records for an hour: the producer, Firehose or the schedule is stuck. Runbook: ${var.runbook_url}#prefix-silence"
  namespace           = var.metrics_namespace
  metric_name         = "AcceptedRecords"
  dimensions          = local.emf_dimension.silver
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

################################################################################
# Dashboard
################################################################################

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name_prefix}-card-features"
  dashboard_body = jsonencode({
    widgets = [
      {
        type   = "metric"
        x      = 0
        y      = 0
        width  = 12
        height = 6
        properties = {
          title  = "Silver records (Stage=${var.silver_stage})"
          region = local.region
          stat   = "Sum"
          period = 600
          metrics = [
            [var.metrics_namespace, "RecordsRead", "Stage", var.silver_stage],
            [var.metrics_namespace, "AcceptedRecords", "Stage", var.silver_stage],
            [var.metrics_namespace, "QuarantinedRecords", "Stage", var.silver_stage],
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 0
        width  = 12
        height = 6
        properties = {
          title   = "Feature Store dead letters (Stage=${var.feature_store_stage})"
          region  = local.region
          stat    = "Sum"
          period  = 600
          metrics = [[var.metrics_namespace, "FeatureStoreDeadLetters", "Stage", var.feature_store_stage]]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 6
        width  = 12
        height = 6
        properties = {
          title  = "Step Functions executions"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = flatten([
            for name, arn in var.state_machine_arns : [
              ["AWS/States", "ExecutionsSucceeded", "StateMachineArn", arn, { label = "${name} succeeded" }],
              ["AWS/States", "ExecutionsFailed", "StateMachineArn", arn, { label = "${name} failed" }],
            ]
          ])
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 6
        width  = 12
        height = 6
        properties = {
          title  = "Ingestion"
          region = local.region
          period = 300
          metrics = [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", var.kinesis_stream_name, { stat = "Sum" }],
            ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", var.kinesis_stream_name, { stat = "Maximum", yAxis = "right" }],
            ["AWS/Firehose", "DeliveryToS3.Records", "DeliveryStreamName", var.delivery_stream_name, { stat = "Sum" }],
            ["AWS/Firehose", "DeliveryToS3.DataFreshness", "DeliveryStreamName", var.delivery_stream_name, { stat = "Maximum", yAxis = "right" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 12
        width  = 24
        height = 6
        properties = {
          title  = "Bronze files changed after processing, and in future ingest_dt= folders (Stage=${var.silver_stage})"
          region = local.region
          stat   = "Maximum"
          period = 600
          metrics = [
            [var.metrics_namespace, "ChangedBronzeFiles", "Stage", var.silver_stage],
            [var.metrics_namespace, "FutureFolderFiles", "Stage", var.silver_stage],
          ]
        }
      },
      {
        type   = "alarm"
        x      = 0
        y      = 18
        width  = 24
        height = 4
        properties = {
          title = "Alarms"
          alarms = concat(
            [for alarm in aws_cloudwatch_metric_alarm.execution_failed : alarm.arn],
            [
              aws_cloudwatch_metric_alarm.firehose_delivery_failed.arn,
              aws_cloudwatch_metric_alarm.firehose_data_freshness.arn,
              aws_cloudwatch_metric_alarm.kinesis_iterator_age.arn,
              aws_cloudwatch_metric_alarm.feature_store_dead_letters.arn,
              aws_cloudwatch_metric_alarm.changed_bronze_files.arn,
              aws_cloudwatch_metric_alarm.replanned_batch.arn,
              aws_cloudwatch_metric_alarm.quarantine_rate.arn,
            ],
            [for alarm in aws_cloudwatch_metric_alarm.silence : alarm.arn],
          )
        }
      },
    ]
  })
}
