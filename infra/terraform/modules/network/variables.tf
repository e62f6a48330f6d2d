variable "name_prefix" {
  description = "Prefix of every resource name, e.g. `cardfeat-dev`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 24
    error_message = "vpc_cidr must be a valid IPv4 CIDR of /24 or larger."
  }
}

variable "private_subnet_cidrs" {
  description = "CIDRs of the private subnets EMR Serverless workers run in, one per availability zone (2 or 3 recommended)."
  type        = list(string)
  default     = ["10.40.0.0/20", "10.40.16.0/20"]

  validation {
    condition     = length(var.private_subnet_cidrs) >= 2 && alltrue([for c in var.private_subnet_cidrs : can(cidrhost(c, 0))])
    error_message = "private_subnet_cidrs needs at least two valid IPv4 CIDRs (one per availability zone)."
  }
}

variable "availability_zones" {
  description = "Availability zone names of the private subnets, in the order of private_subnet_cidrs (pinned, so a new zone never moves a subnet)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == length(var.private_subnet_cidrs) && length(var.availability_zones) == length(distinct(var.availability_zones))
    error_message = "availability_zones needs one distinct zone name per private subnet CIDR."
  }
}

variable "enable_nat_gateway" {
  description = "Add a public subnet with a NAT gateway so jobs can reach services without a VPC endpoint (costs an hourly fee)."
  type        = bool
  default     = false
}

variable "public_subnet_cidr" {
  description = "CIDR of the public subnet holding the NAT gateway (used only when enable_nat_gateway is true)."
  type        = string
  default     = "10.40.255.0/24"

  validation {
    condition     = can(cidrhost(var.public_subnet_cidr, 0))
    error_message = "public_subnet_cidr must be a valid IPv4 CIDR."
  }
}

variable "interface_endpoint_services" {
  description = "Services reached through interface VPC endpoints (suffix after `com.amazonaws.<region>.`). S3 and DynamoDB always get gateway endpoints."
  type        = list(string)
  default = [
    "glue",
    "kms",
    "logs",
    "monitoring",
    "sagemaker.api",
    "sagemaker.featurestore-runtime",
    "secretsmanager",
    "sts",
  ]

  validation {
    condition     = alltrue([for s in var.interface_endpoint_services : can(regex("^[a-z0-9.-]+$", s))]) && contains(var.interface_endpoint_services, "sagemaker.featurestore-runtime")
    error_message = "interface_endpoint_services must be service suffixes and include sagemaker.featurestore-runtime (not reachable from EMR Serverless without it or a NAT)."
  }
}

variable "logs_kms_key_arn" {
  description = "ARN of the customer-managed key for the VPC flow log group."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.logs_kms_key_arn))
    error_message = "logs_kms_key_arn must be a KMS key ARN."
  }
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow log group."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a CloudWatch Logs retention value."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to the flow-log role; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN or null."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
