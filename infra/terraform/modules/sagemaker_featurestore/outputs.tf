output "role_arn" {
  description = "Role the feature groups are created with (`RoleArn` of CreateFeatureGroup)."
  value       = aws_iam_role.this.arn
}

output "online_store_kms_key_arn" {
  description = "Key of the online store (`OnlineStoreConfig.SecurityConfig.KmsKeyId`)."
  value       = module.kms.key_arn
}

output "offline_store_kms_key_arn" {
  description = "Key of the offline store objects (`OfflineStoreConfig.S3StorageConfig.KmsKeyId`)."
  value       = var.offline_store_kms_key_arn
}

output "offline_store_s3_uri" {
  description = "Offline store location (`OfflineStoreConfig.S3StorageConfig.S3Uri`)."
  value       = "s3://${split(":::", var.lake_bucket_arn)[1]}/${local.offline_prefix}"
}

output "glue_database_name" {
  description = "Glue database of the offline store tables (`OfflineStoreConfig.DataCatalogConfig.Database`)."
  value       = var.glue_database_name
}

output "feature_group_name_prefix" {
  description = "Prefix of the card feature group names (`card-features-v{N}`)."
  value       = var.feature_group_name_prefix
}

output "merchant_feature_group_name_prefix" {
  description = "Prefix of the merchant feature group names (`merchant-features-v{N}`)."
  value       = var.merchant_feature_group_name_prefix
}
