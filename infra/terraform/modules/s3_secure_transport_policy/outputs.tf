output "json" {
  description = "Policy document (JSON) with the DenyInsecureTransport and DenyOutdatedTls statements, for `source_policy_documents`."
  value       = data.aws_iam_policy_document.this.json
}
