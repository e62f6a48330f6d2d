terraform {
  # Same floor as the stacks (their S3 backend uses use_lockfile).
  required_version = ">= 1.10"

  # The bootstrap creates the state bucket, so it starts with local state. Keep terraform.tfstate safe (it holds
  # no secrets), or move it into the new bucket afterwards: docs/deploy.md, "Bootstrap".
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
}
