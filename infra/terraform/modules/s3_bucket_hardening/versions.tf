terraform {
  required_version = ">= 1.10"

  # aws >= 6.0: the first release with every argument used (data.aws_region.region), infra/terraform/PROVIDER_FLOOR.md
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
}
