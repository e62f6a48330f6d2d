provider "aws" {
  region              = var.aws_region
  allowed_account_ids = [var.aws_account_id]

  default_tags {
    tags = {
      Project   = var.resource_prefix
      ManagedBy = "terraform"
      Stack     = "bootstrap"
    }
  }
}

locals {
  tags = { Project = var.resource_prefix }
  # The home region holds the state bucket; stacks may also go to the listed regions.
  allowed_regions = distinct(concat([var.aws_region], var.allowed_regions))
}

module "state_backend" {
  source = "../modules/state_backend"

  resource_prefix = var.resource_prefix
  tags            = local.tags
}

module "github_oidc" {
  source = "../modules/github_oidc"

  resource_prefix            = var.resource_prefix
  github_owner               = var.github_owner
  github_repository          = var.github_repository
  github_owner_id            = var.github_owner_id
  github_repository_id       = var.github_repository_id
  deploy_environments        = var.deploy_environments
  create_oidc_provider       = var.create_oidc_provider
  existing_oidc_provider_arn = var.existing_oidc_provider_arn
  allowed_regions            = local.allowed_regions
  state_bucket_arn           = module.state_backend.bucket_arn
  state_kms_key_arn          = module.state_backend.kms_key_arn
  protected_bucket_arns      = [module.state_backend.bucket_arn, module.state_backend.access_logs_bucket_arn]
  tags                       = local.tags
}
