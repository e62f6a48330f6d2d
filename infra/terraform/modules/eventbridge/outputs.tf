output "schedule_arns" {
  description = "ARNs of the schedules, by state machine short name."
  value       = { for name, schedule in aws_scheduler_schedule.this : name => schedule.arn }
}

output "schedule_group_name" {
  description = "Name of the schedule group."
  value       = aws_scheduler_schedule_group.this.name
}

output "role_arn" {
  description = "ARN of the role Scheduler starts executions with."
  value       = aws_iam_role.this.arn
}
