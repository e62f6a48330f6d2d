output "database_names" {
  description = "Names of the Glue databases, by key."
  value       = { for k, db in aws_glue_catalog_database.this : k => db.name }
}

output "database_arns" {
  description = "ARNs of the Glue databases, by key."
  value       = { for k, db in aws_glue_catalog_database.this : k => db.arn }
}

output "lakehouse_database_name" {
  description = "Database the jobs register silver and gold tables in (`--glue-database`)."
  value       = aws_glue_catalog_database.this["lakehouse"].name
}

output "feature_store_database_name" {
  description = "Database of the feature groups' offline store tables."
  value       = aws_glue_catalog_database.this["feature_store"].name
}
