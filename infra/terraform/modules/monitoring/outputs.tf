output "alerts_topic_arn" {
  description = "ARN of the alerts SNS topic (alarms and the state machines' failure notifications)."
  value       = aws_sns_topic.this.arn
}

output "kms_key_arn" {
  description = "ARN of the key for log groups, the alerts topic and the state machines."
  value       = module.kms.key_arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "Names of every alarm of the module."
  value = concat(
    [for alarm in aws_cloudwatch_metric_alarm.execution_failed : alarm.alarm_name],
    [
      aws_cloudwatch_metric_alarm.firehose_delivery_failed.alarm_name,
      aws_cloudwatch_metric_alarm.firehose_data_freshness.alarm_name,
      aws_cloudwatch_metric_alarm.kinesis_iterator_age.alarm_name,
      aws_cloudwatch_metric_alarm.quarantine_rate.alarm_name,
    ],
    [for alarm in aws_cloudwatch_metric_alarm.job_count : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.silence : alarm.alarm_name],
  )
}
