data "aws_caller_identity" "current" {}

locals {
  # Fails the plan with a clear message when a schedule names an unknown state machine.
  target_arns = { for name, schedule in var.schedules : name => var.state_machine_arns[name] }
}

resource "aws_scheduler_schedule_group" "this" {
  name = var.name_prefix
  tags = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "SchedulerAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    # Scheduler reports the schedule group as the source; the schedule pattern covers the schedules themselves.
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values = [
        aws_scheduler_schedule_group.this.arn,
        "${replace(aws_scheduler_schedule_group.this.arn, ":schedule-group/", ":schedule/")}/*",
      ]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name_prefix}-scheduler"
  description          = "Starts the ${var.name_prefix} state machines on their schedules."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "StartScheduledExecutions"
    effect    = "Allow"
    actions   = ["states:StartExecution"]
    resources = values(local.target_arns)
  }

  statement {
    sid       = "UseStateMachineKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.state_machine_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "start-state-machines"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_scheduler_schedule" "this" {
  for_each = var.schedules

  name                         = "${var.name_prefix}-${each.key}"
  group_name                   = aws_scheduler_schedule_group.this.name
  description                  = "Starts the ${each.key} state machine."
  schedule_expression          = each.value.expression
  schedule_expression_timezone = each.value.timezone
  state                        = each.value.enabled ? "ENABLED" : "DISABLED"
  kms_key_arn                  = var.state_machine_kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = local.target_arns[each.key]
    role_arn = aws_iam_role.this.arn
    # Scheduler substitutes the context attribute; the jobs derive their day from it.
    input = jsonencode({ scheduled_time = "<aws.scheduler.scheduled-time>" })

    retry_policy {
      maximum_event_age_in_seconds = var.maximum_event_age_seconds
      maximum_retry_attempts       = 3
    }
  }

  depends_on = [aws_iam_role_policy.this]
}
