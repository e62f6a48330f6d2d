data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  prefix     = var.resource_prefix
  # Glue database names use underscores: stack `cardfeat-dev` owns `cardfeat_dev_*`.
  glue_prefix = replace(var.resource_prefix, "-", "_")

  oidc_host         = "token.actions.githubusercontent.com"
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.this[0].arn : var.existing_oidc_provider_arn

  # Both subject formats GitHub issues: the classic one and the immutable one (owner and repository IDs),
  # which repositories created, renamed or transferred after 2026-07-15 receive. Never a wildcard.
  repository_subjects = [
    "repo:${var.github_owner}/${var.github_repository}",
    "repo:${var.github_owner}@${var.github_owner_id}/${var.github_repository}@${var.github_repository_id}",
  ]
  plan_subjects   = [for repository in local.repository_subjects : "${repository}:pull_request"]
  deploy_subjects = flatten([for repository in local.repository_subjects : [for environment in var.deploy_environments : "${repository}:environment:${environment}"]])

  # ARN heads per allowed region, e.g. arn:aws:kinesis:eu-west-1:123456789012
  regional = {
    for service in ["cloudwatch", "dynamodb", "ecr", "emr-serverless", "firehose", "glue", "kinesis", "kms", "lambda", "logs", "sagemaker", "scheduler", "secretsmanager", "sns", "states", "ec2"] :
    service => [for region in var.allowed_regions : "arn:${local.partition}:${service}:${region}:${local.account_id}"]
  }
  log_group_families = ["/aws/emr-serverless", "/aws/kinesisfirehose", "/aws/lambda", "/aws/vendedlogs/states", "/aws/vpc/flow-logs"]

  github_role_arns = [
    "arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-github-plan",
    "arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-github-deploy",
  ]
  workload_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/${local.prefix}-*"
}

resource "aws_iam_openid_connect_provider" "this" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

################################################################################
# Trust policies
################################################################################

data "aws_iam_policy_document" "plan_assume" {
  statement {
    sid     = "PullRequestsOfThisRepository"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = local.plan_subjects
    }
  }
}

data "aws_iam_policy_document" "deploy_assume" {
  statement {
    sid     = "ProtectedEnvironmentsOfThisRepository"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = local.deploy_subjects
    }
  }
}

################################################################################
# Permissions boundary of every role the deploy role creates
################################################################################

data "aws_iam_policy_document" "boundary" {
  #checkov:skip=CKV_AWS_356:A permissions boundary caps actions; each workload role's own policy scopes them to exact ARNs.
  #checkov:skip=CKV_AWS_111:A permissions boundary grants nothing by itself; the workload roles' policies scope writes to exact ARNs.
  #checkov:skip=CKV_AWS_109:The boundary's only permissions-management action is iam:PassRole, which the state machine role scopes to the job role.
  #checkov:skip=CKV_AWS_108:Data reads in the boundary are only a ceiling; the job role's policy scopes them to the lake prefixes and the one secret.
  statement {
    sid    = "WorkloadActionCeiling"
    effect = "Allow"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:TransactWriteItems",
      "dynamodb:UpdateItem",
      "ec2:AssignPrivateIpAddresses",
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:UnassignPrivateIpAddresses",
      "emr-serverless:CancelJobRun",
      "emr-serverless:GetJobRun",
      "emr-serverless:StartJobRun",
      "events:DescribeRule",
      "events:PutRule",
      "events:PutTargets",
      "glue:BatchGetPartition",
      "glue:CreateDatabase",
      "glue:CreateTable",
      "glue:DeleteTable",
      "glue:GetDatabase",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetUserDefinedFunctions",
      "glue:UpdateTable",
      "iam:PassRole",
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "logs:CreateLogDelivery",
      "logs:CreateLogStream",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeLogStreams",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutLogEvents",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetBucketAcl",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
      "s3:PutObjectAcl",
      "sagemaker:BatchGetRecord",
      "sagemaker:BatchWriteRecord",
      "sagemaker:DeleteRecord",
      "sagemaker:DescribeFeatureGroup",
      "sagemaker:GetRecord",
      "sagemaker:PutRecord",
      "secretsmanager:GetSecretValue",
      "sns:Publish",
      "states:DescribeExecution",
      "states:StartExecution",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "boundary" {
  name        = "${local.prefix}-workload-boundary"
  description = "Permissions boundary of every role the ${local.prefix} deploy role creates."
  policy      = data.aws_iam_policy_document.boundary.json
  tags        = var.tags
}

################################################################################
# plan: read-only, for pull requests
################################################################################

resource "aws_iam_role" "plan" {
  name                 = "${local.prefix}-github-plan"
  description          = "terraform plan for pull requests of ${var.github_owner}/${var.github_repository}."
  assume_role_policy   = data.aws_iam_policy_document.plan_assume.json
  max_session_duration = var.max_session_duration
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.plan.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "ListState"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.state_bucket_arn]
  }

  statement {
    sid       = "ReadState"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.state_bucket_arn}/envs/*"]
  }

  # use_lockfile: a plan takes and releases the lock object next to the state.
  statement {
    sid       = "TakeStateLock"
    effect    = "Allow"
    actions   = ["s3:DeleteObject", "s3:PutObject"]
    resources = ["${var.state_bucket_arn}/envs/*/terraform.tfstate.tflock"]
  }

  statement {
    sid       = "UseStateKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [var.state_kms_key_arn]
  }

  # ReadOnlyAccess also reads data; a pull request's plan must not see card data, secrets or logs.
  statement {
    sid    = "DenyDataReads"
    effect = "Deny"
    actions = [
      "athena:GetQueryResults",
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "kinesis:GetRecords",
      "logs:FilterLogEvents",
      "logs:GetLogEvents",
      "logs:GetLogRecord",
      "logs:GetQueryResults",
      "logs:StartQuery",
      "sagemaker:BatchGetRecord",
      "sagemaker:GetRecord",
      "secretsmanager:GetSecretValue",
      "ssm:GetParameter",
      "ssm:GetParameterHistory",
      "ssm:GetParameters",
      "ssm:GetParametersByPath",
    ]
    resources = ["*"]
  }

  statement {
    sid           = "DenyObjectReadsOutsideState"
    effect        = "Deny"
    actions       = ["s3:GetObject", "s3:GetObjectVersion"]
    not_resources = ["${var.state_bucket_arn}/envs/*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "terraform-state"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}

################################################################################
# deploy: apply, image, code, feature groups; only from protected environments
################################################################################

resource "aws_iam_role" "deploy" {
  name                 = "${local.prefix}-github-deploy"
  description          = "terraform apply and releases from protected environments of ${var.github_owner}/${var.github_repository}."
  assume_role_policy   = data.aws_iam_policy_document.deploy_assume.json
  max_session_duration = var.max_session_duration
  tags                 = var.tags
}

data "aws_iam_policy_document" "deploy_identity" {
  statement {
    sid       = "CreateWorkloadRolesWithBoundary"
    effect    = "Allow"
    actions   = ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:DeleteRolePolicy"]
    resources = [local.workload_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.boundary.arn]
    }
  }

  statement {
    sid    = "MaintainWorkloadRoles"
    effect = "Allow"
    actions = [
      "iam:DeleteRole",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:ListRoleTags",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = [local.workload_role_arn]
  }

  statement {
    sid       = "PassWorkloadRolesToTheirServices"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [local.workload_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values = [
        "firehose.amazonaws.com",
        "lambda.amazonaws.com",
        "sagemaker.amazonaws.com",
        "scheduler.amazonaws.com",
        "states.amazonaws.com",
        "vpc-flow-logs.amazonaws.com",
      ]
    }
  }

  statement {
    sid       = "EmrServerlessServiceLinkedRole"
    effect    = "Allow"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/ops.emr-serverless.amazonaws.com/AWSServiceRoleForAmazonEMRServerless"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["ops.emr-serverless.amazonaws.com"]
    }
  }

  statement {
    sid    = "NeverTouchTheGitHubRolesOrTheBoundary"
    effect = "Deny"
    actions = [
      "iam:AttachRolePolicy",
      "iam:CreatePolicyVersion",
      "iam:DeletePolicy",
      "iam:DeletePolicyVersion",
      "iam:DeleteRole",
      "iam:DeleteRolePermissionsBoundary",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:PassRole",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
      "iam:SetDefaultPolicyVersion",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
    ]
    resources = concat(local.github_role_arns, [aws_iam_policy.boundary.arn])
  }
}

data "aws_iam_policy_document" "deploy_storage" {
  statement {
    sid    = "ManageStackBuckets"
    effect = "Allow"
    actions = [
      "s3:CreateBucket",
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:GetAccelerateConfiguration",
      "s3:GetBucketAcl",
      "s3:GetBucketCORS",
      "s3:GetBucketLocation",
      "s3:GetBucketLogging",
      "s3:GetBucketNotification",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetBucketOwnershipControls",
      "s3:GetBucketPolicy",
      "s3:GetBucketPolicyStatus",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketRequestPayment",
      "s3:GetBucketTagging",
      "s3:GetBucketVersioning",
      "s3:GetBucketWebsite",
      "s3:GetEncryptionConfiguration",
      "s3:GetLifecycleConfiguration",
      "s3:GetReplicationConfiguration",
      "s3:ListBucket",
      "s3:ListBucketVersions",
      "s3:PutBucketLogging",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketTagging",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = ["arn:${local.partition}:s3:::${local.prefix}-*"]
  }

  statement {
    sid       = "ReadWriteStateAndArtifacts"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [var.state_bucket_arn, "${var.state_bucket_arn}/envs/*", "arn:${local.partition}:s3:::${local.prefix}-*-artifacts-*/*"]
  }

  # force_destroy of dev stacks and the state lock need deletes; reads of lake data are not granted.
  statement {
    sid       = "DeleteStackObjects"
    effect    = "Allow"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = ["arn:${local.partition}:s3:::${local.prefix}-*/*"]
  }

  statement {
    sid    = "NeverReconfigureTheStateBuckets"
    effect = "Deny"
    actions = [
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:DeleteObjectVersion",
      "s3:PutBucketLogging",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = concat(var.protected_bucket_arns, [for bucket in var.protected_bucket_arns : "${bucket}/*"])
  }

  statement {
    sid    = "ManageStackTables"
    effect = "Allow"
    actions = [
      "dynamodb:CreateTable",
      "dynamodb:DeleteTable",
      "dynamodb:DescribeContinuousBackups",
      "dynamodb:DescribeTable",
      "dynamodb:DescribeTimeToLive",
      "dynamodb:ListTagsOfResource",
      "dynamodb:TagResource",
      "dynamodb:UntagResource",
      "dynamodb:UpdateContinuousBackups",
      "dynamodb:UpdateTable",
      "dynamodb:UpdateTimeToLive",
    ]
    resources = [for head in local.regional.dynamodb : "${head}:table/${local.prefix}-*"]
  }

  statement {
    sid    = "ManageStackSecrets"
    effect = "Allow"
    actions = [
      "secretsmanager:CreateSecret",
      "secretsmanager:DeleteSecret",
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetResourcePolicy",
      "secretsmanager:PutSecretValue",
      "secretsmanager:TagResource",
      "secretsmanager:UntagResource",
      "secretsmanager:UpdateSecret",
    ]
    resources = [for head in local.regional.secretsmanager : "${head}:secret:${local.prefix}-*"]
  }

  statement {
    sid    = "ManageStackGlueDatabases"
    effect = "Allow"
    actions = [
      "glue:CreateDatabase",
      "glue:CreateTable",
      "glue:DeleteDatabase",
      "glue:DeleteTable",
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTags",
      "glue:TagResource",
      "glue:UntagResource",
      "glue:UpdateDatabase",
      "glue:UpdateTable",
    ]
    resources = flatten([for head in local.regional.glue : [
      "${head}:catalog",
      "${head}:database/${local.glue_prefix}_*",
      "${head}:table/${local.glue_prefix}_*/*",
    ]])
  }
}

data "aws_iam_policy_document" "deploy_keys" {
  statement {
    sid    = "ManageAndUseStackKeys"
    effect = "Allow"
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateGrant",
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:EnableKeyRotation",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListGrants",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:RetireGrant",
      "kms:RevokeGrant",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateKeyDescription",
    ]
    resources = [for head in local.regional.kms : "${head}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Project"
      values   = [local.prefix]
    }
  }

  statement {
    sid       = "UseStateKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [var.state_kms_key_arn]
  }

  statement {
    sid       = "ManageStackKeyAliases"
    effect    = "Allow"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = concat([for head in local.regional.kms : "${head}:alias/${local.prefix}-*"], [for head in local.regional.kms : "${head}:key/*"])
  }

  # CreateKey and ListAliases have no resource to scope to; CreateKey must tag the key with the project.
  statement {
    sid       = "CreateTaggedKeys"
    effect    = "Allow"
    actions   = ["kms:CreateKey"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Project"
      values   = [local.prefix]
    }
  }

  statement {
    sid       = "ListKeyAliases"
    effect    = "Allow"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "deploy_compute" {
  statement {
    sid    = "ManageStackStream"
    effect = "Allow"
    actions = [
      "kinesis:AddTagsToStream",
      "kinesis:CreateStream",
      "kinesis:DecreaseStreamRetentionPeriod",
      "kinesis:DeleteStream",
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:IncreaseStreamRetentionPeriod",
      "kinesis:ListTagsForResource",
      "kinesis:ListTagsForStream",
      "kinesis:RemoveTagsFromStream",
      "kinesis:StartStreamEncryption",
      "kinesis:StopStreamEncryption",
      "kinesis:TagResource",
      "kinesis:UntagResource",
      "kinesis:UpdateShardCount",
      "kinesis:UpdateStreamMode",
    ]
    resources = [for head in local.regional.kinesis : "${head}:stream/${local.prefix}-*"]
  }

  statement {
    sid    = "ManageStackDeliveryStream"
    effect = "Allow"
    actions = [
      "firehose:CreateDeliveryStream",
      "firehose:DeleteDeliveryStream",
      "firehose:DescribeDeliveryStream",
      "firehose:ListTagsForDeliveryStream",
      "firehose:TagDeliveryStream",
      "firehose:UntagDeliveryStream",
      "firehose:UpdateDestination",
    ]
    resources = [for head in local.regional.firehose : "${head}:deliverystream/${local.prefix}-*"]
  }

  statement {
    sid    = "ManageEmrServerlessApplications"
    effect = "Allow"
    actions = [
      "emr-serverless:CreateApplication",
      "emr-serverless:DeleteApplication",
      "emr-serverless:GetApplication",
      "emr-serverless:ListTagsForResource",
      "emr-serverless:StartApplication",
      "emr-serverless:StopApplication",
      "emr-serverless:TagResource",
      "emr-serverless:UntagResource",
      "emr-serverless:UpdateApplication",
    ]
    resources = [for head in local.regional["emr-serverless"] : "${head}:/applications/*"]
  }

  statement {
    sid    = "ManageAndPushStackImages"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchDeleteImage",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:CreateRepository",
      "ecr:DeleteLifecyclePolicy",
      "ecr:DeleteRepository",
      "ecr:DeleteRepositoryPolicy",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:GetDownloadUrlForLayer",
      "ecr:GetLifecyclePolicy",
      "ecr:GetRepositoryPolicy",
      "ecr:InitiateLayerUpload",
      "ecr:ListImages",
      "ecr:ListTagsForResource",
      "ecr:PutImage",
      "ecr:PutImageScanningConfiguration",
      "ecr:PutImageTagMutability",
      "ecr:PutLifecyclePolicy",
      "ecr:SetRepositoryPolicy",
      "ecr:TagResource",
      "ecr:UntagResource",
      "ecr:UploadLayerPart",
    ]
    resources = [for head in local.regional.ecr : "${head}:repository/${local.prefix}-*"]
  }

  # GetAuthorizationToken has no resource-level permissions.
  statement {
    sid       = "LogInToEcr"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "RegisterFeatureGroups"
    effect = "Allow"
    actions = [
      "sagemaker:AddTags",
      "sagemaker:CreateFeatureGroup",
      "sagemaker:DeleteFeatureGroup",
      "sagemaker:DescribeFeatureGroup",
      "sagemaker:DescribeFeatureMetadata",
      "sagemaker:ListTags",
      "sagemaker:UpdateFeatureGroup",
      "sagemaker:UpdateFeatureMetadata",
    ]
    resources = [
      for pair in setproduct(local.regional.sagemaker, [var.feature_group_name_prefix, var.merchant_feature_group_name_prefix]) :
      "${pair[0]}:feature-group/${pair[1]}*"
    ]
  }

  # ListFeatureGroups has no resource-level permissions.
  statement {
    sid       = "ListFeatureGroups"
    effect    = "Allow"
    actions   = ["sagemaker:ListFeatureGroups"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "deploy_network" {
  statement {
    sid    = "DescribeNetwork"
    effect = "Allow"
    actions = [
      "ec2:DescribeAccountAttributes",
      "ec2:DescribeAddresses",
      "ec2:DescribeAddressesAttribute",
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeFlowLogs",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeNatGateways",
      "ec2:DescribeNetworkAcls",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribePrefixLists",
      "ec2:DescribeRouteTables",
      "ec2:DescribeSecurityGroupRules",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeTags",
      "ec2:DescribeVpcAttribute",
      "ec2:DescribeVpcEndpointServices",
      "ec2:DescribeVpcEndpoints",
      "ec2:DescribeVpcs",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = var.allowed_regions
    }
  }

  statement {
    sid    = "ManageStackNetwork"
    effect = "Allow"
    actions = [
      "ec2:AllocateAddress",
      "ec2:AssociateRouteTable",
      "ec2:AttachInternetGateway",
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:CreateFlowLogs",
      "ec2:CreateInternetGateway",
      "ec2:CreateNatGateway",
      "ec2:CreateRoute",
      "ec2:CreateRouteTable",
      "ec2:CreateSecurityGroup",
      "ec2:CreateSubnet",
      "ec2:CreateTags",
      "ec2:CreateVpc",
      "ec2:CreateVpcEndpoint",
      "ec2:DeleteFlowLogs",
      "ec2:DeleteInternetGateway",
      "ec2:DeleteNatGateway",
      "ec2:DeleteRoute",
      "ec2:DeleteRouteTable",
      "ec2:DeleteSecurityGroup",
      "ec2:DeleteSubnet",
      "ec2:DeleteTags",
      "ec2:DeleteVpc",
      "ec2:DeleteVpcEndpoints",
      "ec2:DetachInternetGateway",
      "ec2:DisassociateAddress",
      "ec2:DisassociateRouteTable",
      "ec2:ModifySecurityGroupRules",
      "ec2:ModifySubnetAttribute",
      "ec2:ModifyVpcAttribute",
      "ec2:ModifyVpcEndpoint",
      "ec2:ReleaseAddress",
      "ec2:ReplaceRoute",
      "ec2:RevokeSecurityGroupEgress",
      "ec2:RevokeSecurityGroupIngress",
      "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
      "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
    ]
    resources = [for head in local.regional.ec2 : "${head}:*"]
  }

  # Interface endpoints with private DNS associate the VPC with an AWS-owned private hosted zone.
  statement {
    sid       = "PrivateDnsForInterfaceEndpoints"
    effect    = "Allow"
    actions   = ["route53:AssociateVPCWithHostedZone"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "deploy_orchestration" {
  statement {
    sid    = "ManageStackLogGroups"
    effect = "Allow"
    actions = [
      "logs:AssociateKmsKey",
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DeleteLogGroup",
      "logs:DeleteLogStream",
      "logs:DeleteRetentionPolicy",
      "logs:DescribeLogStreams",
      "logs:DisassociateKmsKey",
      "logs:ListTagsForResource",
      "logs:ListTagsLogGroup",
      "logs:PutRetentionPolicy",
      "logs:TagLogGroup",
      "logs:TagResource",
      "logs:UntagLogGroup",
      "logs:UntagResource",
    ]
    resources = flatten([for head in local.regional.logs : flatten([for family in local.log_group_families : [
      "${head}:log-group:${family}/${local.prefix}-*",
      "${head}:log-group:${family}/${local.prefix}-*:*",
    ]])])
  }

  statement {
    sid       = "FindLogGroups"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = [for head in local.regional.logs : "${head}:log-group:*"]
  }

  # Creating a state machine with logging sets up a vended-log delivery; these APIs take no resource.
  statement {
    sid    = "SetUpStateMachineLogDelivery"
    effect = "Allow"
    actions = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    resources = ["*"]
  }

  statement {
    sid    = "ManageStackStateMachines"
    effect = "Allow"
    actions = [
      "states:CreateStateMachine",
      "states:DeleteStateMachine",
      "states:DescribeStateMachine",
      "states:ListStateMachineVersions",
      "states:ListTagsForResource",
      "states:TagResource",
      "states:UntagResource",
      "states:UpdateStateMachine",
    ]
    resources = [for head in local.regional.states : "${head}:stateMachine:${local.prefix}-*"]
  }

  statement {
    sid    = "ManageStackSchedules"
    effect = "Allow"
    actions = [
      "scheduler:CreateSchedule",
      "scheduler:CreateScheduleGroup",
      "scheduler:DeleteSchedule",
      "scheduler:DeleteScheduleGroup",
      "scheduler:GetSchedule",
      "scheduler:GetScheduleGroup",
      "scheduler:ListTagsForResource",
      "scheduler:TagResource",
      "scheduler:UntagResource",
      "scheduler:UpdateSchedule",
    ]
    resources = flatten([for head in local.regional.scheduler : [
      "${head}:schedule-group/${local.prefix}-*",
      "${head}:schedule/${local.prefix}-*/*",
    ]])
  }

  statement {
    sid    = "ManageStackTopics"
    effect = "Allow"
    actions = [
      "sns:CreateTopic",
      "sns:DeleteTopic",
      "sns:GetSubscriptionAttributes",
      "sns:GetTopicAttributes",
      "sns:ListSubscriptionsByTopic",
      "sns:ListTagsForResource",
      "sns:SetSubscriptionAttributes",
      "sns:SetTopicAttributes",
      "sns:Subscribe",
      "sns:TagResource",
      "sns:Unsubscribe",
      "sns:UntagResource",
    ]
    resources = [for head in local.regional.sns : "${head}:${local.prefix}-*"]
  }

  statement {
    sid    = "ManageStackAlarms"
    effect = "Allow"
    actions = [
      "cloudwatch:DeleteAlarms",
      "cloudwatch:DescribeAlarms",
      "cloudwatch:ListTagsForResource",
      "cloudwatch:PutMetricAlarm",
      "cloudwatch:TagResource",
      "cloudwatch:UntagResource",
    ]
    resources = [for head in local.regional.cloudwatch : "${head}:alarm:${local.prefix}-*"]
  }

  statement {
    sid       = "ManageStackDashboards"
    effect    = "Allow"
    actions   = ["cloudwatch:DeleteDashboards", "cloudwatch:GetDashboard", "cloudwatch:PutDashboard"]
    resources = ["arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${local.prefix}-*"]
  }
}

data "aws_iam_policy_document" "deploy_serving" {
  statement {
    sid    = "ManageStackFunctions"
    effect = "Allow"
    actions = [
      "lambda:AddPermission",
      "lambda:CreateFunction",
      "lambda:CreateFunctionUrlConfig",
      "lambda:DeleteFunction",
      "lambda:DeleteFunctionConcurrency",
      "lambda:DeleteFunctionUrlConfig",
      "lambda:GetFunction",
      "lambda:GetFunctionCodeSigningConfig",
      "lambda:GetFunctionConcurrency",
      "lambda:GetFunctionConfiguration",
      "lambda:GetFunctionUrlConfig",
      "lambda:GetPolicy",
      "lambda:GetRuntimeManagementConfig",
      "lambda:ListTags",
      "lambda:ListVersionsByFunction",
      "lambda:PutFunctionConcurrency",
      "lambda:RemovePermission",
      "lambda:TagResource",
      "lambda:UntagResource",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
      "lambda:UpdateFunctionUrlConfig",
    ]
    resources = [for head in local.regional.lambda : "${head}:function:${local.prefix}-*"]
  }
}

locals {
  # Split in several managed policies: one managed policy holds at most 6,144 characters.
  deploy_policies = {
    identity      = data.aws_iam_policy_document.deploy_identity.json
    storage       = data.aws_iam_policy_document.deploy_storage.json
    keys          = data.aws_iam_policy_document.deploy_keys.json
    compute       = data.aws_iam_policy_document.deploy_compute.json
    network       = data.aws_iam_policy_document.deploy_network.json
    orchestration = data.aws_iam_policy_document.deploy_orchestration.json
    serving       = data.aws_iam_policy_document.deploy_serving.json
  }
}

resource "aws_iam_policy" "deploy" {
  for_each = local.deploy_policies

  name        = "${local.prefix}-github-deploy-${each.key}"
  description = "Deploy role of ${var.github_owner}/${var.github_repository}: ${each.key} permissions."
  policy      = each.value
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "deploy" {
  for_each = aws_iam_policy.deploy

  role       = aws_iam_role.deploy.name
  policy_arn = each.value.arn
}
