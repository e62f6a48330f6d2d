terraform {
  # use_lockfile (S3-native state locking) needs Terraform 1.10+ (GA in 1.11) or OpenTofu 1.10+.
  required_version = ">= 1.10"

  # Partial configuration: bucket, region and kms_key_id come from `terraform init -backend-config=...`
  # (the bootstrap root prints them; the workflows pass them from repository variables).
  backend "s3" {
    key          = "envs/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }

  # aws >= 6.0: the first release with every argument used (data.aws_region.region), infra/terraform/PROVIDER_FLOOR.md
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
}
