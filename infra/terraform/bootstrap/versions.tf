terraform {
  # Same floor as the stacks (their S3 backend uses use_lockfile).
  required_version = ">= 1.10"

  # The bootstrap creates the state bucket, so it starts with local state, one file per account: run
  #   terraform init -reconfigure -backend-config=path=state/<account id>/terraform.tfstate
  # before working on an account, so a second account never reads or overwrites the first one's state. Keep the
  # files safe (they hold no secrets; .gitignore excludes them) or move each into its account's new bucket:
  # docs/deploy.md, "2. Bootstrap each account".
  backend "local" {}

  # aws >= 6.0: the first release with every argument used (data.aws_region.region), infra/terraform/PROVIDER_FLOOR.md
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
}
