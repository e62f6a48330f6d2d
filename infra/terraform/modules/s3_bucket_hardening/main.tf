################################################################################
# What every bucket of the platform gets, written once: bucket-owner-enforced ownership (no ACLs), all public
# access blocked, versioning. The bucket, its encryption, lifecycle, logging and policy stay with the caller:
# encryption differs (SSE-S3 for access logs, each caller's own KMS key otherwise) and checkov only judges it
# right where the algorithm is a literal.
################################################################################

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = var.bucket_id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = var.bucket_id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = var.bucket_id

  versioning_configuration {
    status = "Enabled"
  }
}
