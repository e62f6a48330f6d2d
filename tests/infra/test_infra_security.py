"""What checkov does not check: the project's own IAM, encryption and trust rules."""

from __future__ import annotations

import fnmatch
import re

import pytest

from tests.infra import infra_model as tf

# Allow statements whose resource is "*", each with the reason it cannot be narrower. Keyed by
# (module, policy document, sid); "<dynamic>" is a statement built by a dynamic block.
STAR_RESOURCE_ALLOW_LIST = {
    ("modules/kms_key", "this", "AccountAdministersKeyThroughIam"): "key policy: '*' is the key itself",
    ("modules/kms_key", "this", "AccountUsesKeyThroughIam"): "key policy: '*' is the key itself",
    ("modules/kms_key", "this", "<dynamic>"): "key policy: '*' is the key itself (service principal statements)",
    ("modules/github_oidc", "boundary", "WorkloadActionCeiling"): "permissions boundary: caps actions, grants nothing",
    (
        "modules/github_oidc",
        "deploy_keys",
        "CreateTaggedKeys",
    ): "kms:CreateKey has no resource; requires the Project tag",
    ("modules/github_oidc", "deploy_keys", "ListKeyAliases"): "kms:ListAliases has no resource-level permissions",
    (
        "modules/github_oidc",
        "deploy_compute",
        "LogInToEcr",
    ): "ecr:GetAuthorizationToken has no resource-level permissions",
    ("modules/github_oidc", "deploy_compute", "ListFeatureGroups"): "sagemaker:ListFeatureGroups has no resource",
    ("modules/github_oidc", "deploy_network", "DescribeNetwork"): "EC2 Describe* have no resource-level permissions",
    ("modules/github_oidc", "deploy_network", "PrivateDnsForInterfaceEndpoints"): "AWS-owned private hosted zones",
    ("modules/github_oidc", "deploy_orchestration", "SetUpStateMachineLogDelivery"): "vended-log delivery APIs",
    ("modules/step_functions", "this", "DeliverExecutionLogs"): "vended-log delivery APIs have no resource",
    ("modules/step_functions", "this", "WriteTraces"): "X-Ray trace APIs have no resource-level permissions",
    ("modules/feature_serving", "tracing", "WriteTraces"): "X-Ray trace APIs have no resource-level permissions",
    (
        "modules/feature_serving",
        "this",
        "DescribeNetworkInterfaces",
    ): "ec2:DescribeNetworkInterfaces/DescribeSubnets have no resource-level permissions",
}

# Roles a human creates with the bootstrap root (no boundary: they are the ones that enforce it).
ROLES_WITHOUT_BOUNDARY = {("modules/github_oidc", "plan"), ("modules/github_oidc", "deploy")}
# Policy documents that are not identity policies of workload roles.
NON_WORKLOAD_DOCUMENTS = {
    "modules/github_oidc": None,  # the GitHub roles and the boundary itself
    "modules/kms_key": None,  # key policies
    "modules/state_backend": None,  # bucket policies only
    "modules/log_bucket": None,  # bucket policy only
}


def allow_statements() -> list[tf.Statement]:
    return [s for s in tf.statements() if s.effect == "Allow"]


def is_star(value: object) -> bool:
    return tf.literal(value) == "*"


################################################################################
# Actions and resources
################################################################################


def test_allow_statements_never_use_wildcard_actions():
    offenders = []
    for statement in allow_statements():
        if statement.actions is None:
            # Only the kms_key module builds statements from a variable, whose validation forbids wildcards.
            assert statement.key == ("modules/kms_key", "this", "<dynamic>"), f"unresolvable actions: {statement}"
            continue
        offenders += [f"{statement.key}: {action}" for action in statement.actions if "*" in action]
    assert not offenders, "wildcard actions in Allow statements:\n" + "\n".join(offenders)


def test_kms_key_callers_pass_explicit_actions():
    for block in tf.blocks():
        if block.kind != "module" or tf.literal(block.body.get("source")) != "../kms_key":
            continue
        for statement in block.body.get("service_principal_statements", []):
            actions = [tf.literal(a) for a in statement["actions"]]
            assert all(a and "*" not in a for a in actions), f"{block.address}: {actions}"


def test_star_resources_only_on_the_allow_list():
    found = {s.key for s in allow_statements() if any(is_star(r) for r in s.resources)}
    assert found <= set(STAR_RESOURCE_ALLOW_LIST), (
        f"'*' resources not on the allow-list: {sorted(found - set(STAR_RESOURCE_ALLOW_LIST))}"
    )
    assert set(STAR_RESOURCE_ALLOW_LIST) <= found, (
        f"stale allow-list entries: {sorted(set(STAR_RESOURCE_ALLOW_LIST) - found)}"
    )


def test_allow_statements_never_name_everyone_as_principal():
    offenders = []
    for statement in allow_statements():
        for principal in statement.principals:
            identifiers = principal.get("identifiers", [])
            if isinstance(identifiers, list) and any(is_star(i) for i in identifiers):
                offenders.append(statement.key)
    assert not offenders, offenders


def test_allow_statements_never_use_not_actions_or_not_resources():
    for block in tf.data_sources("aws_iam_policy_document"):
        for statement in block.body.get("statement", []):
            effect = tf.literal(statement.get("effect", '"Allow"'))
            if effect == "Allow":
                assert "not_actions" not in statement and "not_resources" not in statement, block.address


def test_no_aws_managed_admin_policies():
    attachments = [tf.template(b.body.get("policy_arn")) or "" for b in tf.resources("aws_iam_role_policy_attachment")]
    assert not [a for a in attachments if "AdministratorAccess" in a or "PowerUserAccess" in a or "IAMFullAccess" in a]
    managed = [a for a in attachments if ":aws:policy/" in a]
    assert all(a.endswith(":aws:policy/ReadOnlyAccess") for a in managed), managed


################################################################################
# Roles
################################################################################


def role_trust_documents() -> list[tuple[tf.Block, str]]:
    found = []
    for role in tf.resources("aws_iam_role"):
        document = tf.referenced_document(role.body.get("assume_role_policy"))
        assert document, f"{role.address}: assume_role_policy must come from an aws_iam_policy_document"
        found.append((role, document))
    return found


def test_every_workload_role_carries_the_permissions_boundary():
    missing = [
        role.address
        for role in tf.resources("aws_iam_role")
        if (role.module, role.name) not in ROLES_WITHOUT_BOUNDARY and "permissions_boundary" not in role.body
    ]
    assert not missing, f"roles without permissions_boundary: {missing}"


def test_every_trust_policy_is_conditioned():
    for role, document in role_trust_documents():
        trust = [s for s in tf.statements() if s.module == role.module and s.document == document]
        assert trust, f"{role.address}: trust policy {document} not found"
        for statement in trust:
            variables = {tf.template(c.get("variable")) for c in statement.conditions}
            assert variables & {"aws:SourceAccount", "aws:SourceArn", "sts:ExternalId"} or any(
                v and v.endswith((":aud", ":sub")) for v in variables
            ), f"{role.address}: trust statement {statement.sid} has no source condition"


def boundary_actions() -> set[str]:
    boundary = [s for s in tf.statements() if s.key == ("modules/github_oidc", "boundary", "WorkloadActionCeiling")]
    assert len(boundary) == 1
    return set(boundary[0].actions or [])


def test_workload_roles_stay_inside_the_permissions_boundary():
    """Every action a stack role is granted must be allowed by the boundary, or the role silently loses it."""
    ceiling = boundary_actions()
    outside = []
    for statement in allow_statements():
        if statement.module in NON_WORKLOAD_DOCUMENTS or statement.actions is None:
            continue
        if statement.principals:
            continue  # trust and resource policies are not identity permissions
        outside += [f"{statement.key}: {a}" for a in statement.actions if a not in ceiling and a != "sts:AssumeRole"]
    assert not outside, "add to the boundary or drop from the role:\n" + "\n".join(outside)


def test_pass_role_is_limited_to_named_roles_and_services():
    for statement in allow_statements():
        if not statement.actions or "iam:PassRole" not in statement.actions:
            continue
        if statement.key == ("modules/github_oidc", "boundary", "WorkloadActionCeiling"):
            continue
        assert not any(is_star(r) for r in statement.resources), statement.key
        passed_to = tf.condition_values(statement, "iam:PassedToService")
        assert passed_to and all(test == "StringEquals" for test, _ in passed_to), (
            f"{statement.key}: no PassedToService"
        )


def test_state_machines_may_pass_only_the_job_role_to_emr_serverless():
    passes = [
        s
        for s in allow_statements()
        if s.module == "modules/step_functions" and s.actions and "iam:PassRole" in s.actions
    ]
    assert len(passes) == 1
    statement = passes[0]
    assert statement.actions == ["iam:PassRole"]
    assert statement.resources == ["${var.emr_job_role_arn}"]
    [(test, values)] = tf.condition_values(statement, "iam:PassedToService")
    assert test == "StringEquals" and [tf.literal(v) for v in values] == ["emr-serverless.amazonaws.com"]


def test_state_machine_role_is_exactly_what_the_design_allows():
    granted = {
        action
        for s in allow_statements()
        if s.module == "modules/step_functions" and s.document == "this"
        for action in s.actions or []
    }
    expected = {
        "emr-serverless:StartJobRun",
        "emr-serverless:GetJobRun",
        "emr-serverless:CancelJobRun",
        "iam:PassRole",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "states:DescribeExecution",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    logging_and_tracing = {a for a in granted if a.startswith(("logs:", "xray:"))}
    assert granted - logging_and_tracing == expected


################################################################################
# GitHub OIDC trust
################################################################################

OWNER, OWNER_ID, REPO, REPO_ID = "acme", "4242", "card-features", "777"


def render(text: str) -> str:
    values = {
        "var.github_owner": OWNER,
        "var.github_owner_id": OWNER_ID,
        "var.github_repository": REPO,
        "var.github_repository_id": REPO_ID,
    }
    return re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def oidc_subjects() -> dict[str, list[str]]:
    """The subjects each GitHub role trusts, rendered for a sample repository."""
    local = tf.module_locals("modules/github_oidc")
    repositories = [render(tf.template(r)) for r in local["repository_subjects"]]
    plan = [f"{r}:pull_request" for r in repositories]
    deploy = [f"{r}:environment:production" for r in repositories]
    # The locals must build exactly these shapes from the repository subjects.
    assert local["plan_subjects"] == '${[for repository in local.repository_subjects : "${repository}:pull_request"]}'
    assert "environment:${environment}" in local["deploy_subjects"]
    return {"plan": plan, "deploy": deploy}


@pytest.mark.parametrize("document", ["plan_assume", "deploy_assume"])
def test_oidc_trust_pins_audience_and_exact_subjects(document):
    [statement] = [s for s in tf.statements() if s.key[:2] == ("modules/github_oidc", document)]
    assert statement.actions == ["sts:AssumeRoleWithWebIdentity"]
    assert [tf.literal(p["type"]) for p in statement.principals] == ["Federated"]
    tests = {
        tf.template(c["variable"]).split(":")[-1]: (tf.literal(c["test"]), c["values"]) for c in statement.conditions
    }
    assert tests["aud"] == ("StringEquals", ['"sts.amazonaws.com"'])
    assert tests["sub"][0] == "StringEquals", "subjects must match exactly, never StringLike"
    assert tests["sub"][1] == ("${local.plan_subjects}" if document == "plan_assume" else "${local.deploy_subjects}")


def test_oidc_subjects_accept_both_formats_and_nothing_else():
    subjects = oidc_subjects()
    assert subjects["plan"] == [
        f"repo:{OWNER}/{REPO}:pull_request",
        f"repo:{OWNER}@{OWNER_ID}/{REPO}@{REPO_ID}:pull_request",
    ]
    assert subjects["deploy"] == [
        f"repo:{OWNER}/{REPO}:environment:production",
        f"repo:{OWNER}@{OWNER_ID}/{REPO}@{REPO_ID}:environment:production",
    ]
    for subject in subjects["plan"] + subjects["deploy"]:
        assert "*" not in subject and "?" not in subject
    for stranger in (
        f"repo:{OWNER}/other-repo:pull_request",
        f"repo:other/{REPO}:environment:production",
        f"repo:{OWNER}/{REPO}:ref:refs/heads/main",
        f"repo:{OWNER}/{REPO}:environment:dev",
    ):
        assert not any(fnmatch.fnmatchcase(stranger, s) for s in subjects["plan"] + subjects["deploy"]), stranger


def test_oidc_inputs_cannot_smuggle_wildcards():
    variables = {b.name: b for b in tf.blocks() if b.kind == "variable" and b.module == "modules/github_oidc"}
    for name in ("github_owner", "github_repository", "github_owner_id", "github_repository_id", "deploy_environments"):
        condition = str(variables[name].body["validation"][0]["condition"])
        assert "regex(" in condition and "*" not in condition.replace("{", "").split("regex(")[1].split(",")[0].strip(
            '"^$'
        ), name


################################################################################
# Encryption at rest: customer-managed keys everywhere
################################################################################

# S3 server access logging only delivers into SSE-S3 buckets.
SSE_S3_BUCKETS = {("modules/log_bucket", "this")}


def first(body: dict, name: str) -> dict:
    value = body.get(name, [{}])
    return value[0] if isinstance(value, list) and value else {}


def cmk_rules(block: tf.Block) -> bool:
    body = block.body
    rules = {
        "aws_kinesis_stream": lambda: tf.literal(body.get("encryption_type")) == "KMS" and "kms_key_id" in body,
        "aws_cloudwatch_log_group": lambda: "kms_key_id" in body,
        "aws_sns_topic": lambda: "kms_master_key_id" in body,
        "aws_dynamodb_table": lambda: (
            first(body, "server_side_encryption").get("enabled") is True
            and "kms_key_arn" in first(body, "server_side_encryption")
        ),
        "aws_secretsmanager_secret": lambda: "kms_key_id" in body,
        "aws_ecr_repository": lambda: (
            tf.literal(first(body, "encryption_configuration").get("encryption_type")) == "KMS"
            and "kms_key" in first(body, "encryption_configuration")
        ),
        "aws_sfn_state_machine": lambda: (
            tf.literal(first(body, "encryption_configuration").get("type")) == "CUSTOMER_MANAGED_KMS_KEY"
        ),
        "aws_scheduler_schedule": lambda: "kms_key_arn" in body,
        "aws_kinesis_firehose_delivery_stream": lambda: "kms_key_arn" in first(body, "extended_s3_configuration"),
        "aws_emrserverless_application": lambda: (
            "encryption_key_arn" in first(first(body, "monitoring_configuration"), "cloudwatch_logging_configuration")
            and "encryption_key_arn" in first(first(body, "monitoring_configuration"), "s3_monitoring_configuration")
        ),
        "aws_kms_key": lambda: body.get("enable_key_rotation") is True,
        # Environment variables encrypted with a customer-managed key.
        "aws_lambda_function": lambda: "kms_key_arn" in body,
    }
    return rules[block.type]()


CMK_TYPES = {
    "aws_kinesis_stream",
    "aws_cloudwatch_log_group",
    "aws_sns_topic",
    "aws_dynamodb_table",
    "aws_secretsmanager_secret",
    "aws_ecr_repository",
    "aws_sfn_state_machine",
    "aws_scheduler_schedule",
    "aws_kinesis_firehose_delivery_stream",
    "aws_emrserverless_application",
    "aws_kms_key",
    "aws_lambda_function",
}
# Types that store data and would need a rule above before they may appear in the code.
ENCRYPTABLE_WITHOUT_RULE = {
    "aws_sqs_queue",
    "aws_ebs_volume",
    "aws_efs_file_system",
    "aws_db_instance",
    "aws_rds_cluster",
    "aws_athena_workgroup",
    "aws_sagemaker_feature_group",
    "aws_ssm_parameter",
    "aws_cloudtrail",
    "aws_elasticache_replication_group",
    "aws_msk_cluster",
    "aws_opensearch_domain",
    "aws_glue_data_catalog_encryption_settings",
}


def test_every_encryptable_resource_uses_a_customer_managed_key():
    offenders = [b.address for b in tf.resources() if b.type in CMK_TYPES and not cmk_rules(b)]
    assert not offenders, f"not encrypted with a customer-managed key: {offenders}"
    unknown = [b.address for b in tf.resources() if b.type in ENCRYPTABLE_WITHOUT_RULE]
    assert not unknown, f"add a customer-managed-key rule to tests/infra for: {unknown}"


def test_every_bucket_is_encrypted_with_a_customer_managed_key():
    configurations = tf.resources("aws_s3_bucket_server_side_encryption_configuration")
    for bucket in tf.resources("aws_s3_bucket"):
        matching = [c for c in configurations if c.module == bucket.module and refers_to_bucket(c, bucket)]
        assert len(matching) == 1, f"{bucket.address}: expected one encryption configuration"
        default = first(first(matching[0].body, "rule"), "apply_server_side_encryption_by_default")
        if (bucket.module, bucket.name) in SSE_S3_BUCKETS:
            assert tf.literal(default.get("sse_algorithm")) == "AES256", bucket.address
        else:
            assert tf.literal(default.get("sse_algorithm")) == "aws:kms" and "kms_master_key_id" in default, (
                bucket.address
            )


def test_no_aws_managed_keys():
    offenders = [str(p) for p in tf.tf_files() if "alias/aws/" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


################################################################################
# Bucket policies
################################################################################


def refers_to_bucket(block: tf.Block, bucket: tf.Block, attribute: str = "bucket") -> bool:
    reference = f"aws_s3_bucket.{bucket.name}"
    text = str(block.body.get(attribute))
    return f"{reference}." in text or (reference in str(block.body.get("for_each")) and "each.value" in text)


def module_call(module: str, name: str) -> tf.Block:
    [call] = [b for b in tf.blocks() if b.kind == "module" and b.module == module and b.name == name]
    return call


def merged_statements(module: str, document: str) -> list[tf.Statement]:
    """A policy document's own statements plus those of the module outputs it merges via source_policy_documents."""
    [block] = [b for b in tf.data_sources("aws_iam_policy_document") if b.module == module and b.name == document]
    found = [s for s in tf.statements() if s.module == module and s.document == document]
    for source in block.body.get("source_policy_documents", []):
        match = re.fullmatch(r"\$\{module\.(\w+)(?:\[[^\]]+\])?\.(\w+)\}", str(source))
        assert match, f"{block.address}: source_policy_documents entry {source} is not a module output"
        call, output = match.groups()
        callee = (tf.TERRAFORM_ROOT / module / tf.literal(module_call(module, call).body["source"])).resolve()
        callee_module = callee.relative_to(tf.TERRAFORM_ROOT).as_posix()
        [value] = [
            b.body["value"]
            for b in tf.blocks()
            if b.kind == "output" and b.module == callee_module and b.name == output
        ]
        found += merged_statements(callee_module, tf.referenced_document(value))
    return found


@pytest.mark.parametrize("bucket", tf.resources("aws_s3_bucket"), ids=lambda b: b.address)
def test_every_bucket_denies_insecure_transport(bucket):
    policies = [
        p for p in tf.resources("aws_s3_bucket_policy") if p.module == bucket.module and refers_to_bucket(p, bucket)
    ]
    assert len(policies) == 1, f"{bucket.address}: expected one bucket policy"
    document = tf.referenced_document(policies[0].body["policy"])
    statements = merged_statements(bucket.module, document)
    for sid, variable, test, value in (
        ("DenyInsecureTransport", "aws:SecureTransport", "Bool", '"false"'),
        ("DenyOutdatedTls", "s3:TlsVersion", "NumericLessThan", '"1.2"'),
    ):
        denies = [
            s
            for s in statements
            if s.effect == "Deny"
            and s.actions == ["s3:*"]
            and tf.condition_values(s, variable) == [(test, [value])]
            and any(tf.literal(p.get("type")) == "*" for p in s.principals)
        ]
        assert [s.sid for s in denies] == [sid], (
            f"{bucket.address}: no single {sid} (Deny of {variable} {test} {value})"
        )


def test_the_secure_transport_statements_cover_the_bucket_and_its_objects():
    statements = [s for s in tf.statements() if s.module == "modules/s3_secure_transport_policy"]
    assert {s.sid for s in statements} == {"DenyInsecureTransport", "DenyOutdatedTls"}
    arns = tf.module_locals("modules/s3_secure_transport_policy")["bucket_and_objects"]
    assert arns == ["${var.bucket_arn}", '"${var.bucket_arn}/*"'], arns
    assert all(s.resources == ["${local.bucket_and_objects}"] for s in statements), statements


def test_every_secure_transport_call_names_its_own_bucket():
    """S3 rejects a policy naming another bucket; and one call per bucket keeps each policy on its own bucket."""
    calls = [
        b
        for b in tf.blocks()
        if b.kind == "module" and tf.literal(b.body.get("source")) == "../s3_secure_transport_policy"
    ]
    assert {c.module for c in calls} == {"modules/log_bucket", "modules/state_backend", "modules/s3_datalake"}
    for call in calls:
        if "for_each" in call.body:
            assert (call.body["for_each"], call.body["bucket_arn"]) == ("${aws_s3_bucket.this}", "${each.value.arn}")
        else:
            assert call.body["bucket_arn"] == "${aws_s3_bucket.this.arn}", call.address


HARDENING_TYPES = ("aws_s3_bucket_public_access_block", "aws_s3_bucket_versioning", "aws_s3_bucket_ownership_controls")


def hardening_resource(type_: str) -> tf.Block:
    [resource] = [b for b in tf.resources(type_) if b.module == "modules/s3_bucket_hardening"]
    assert resource.body["bucket"] == "${var.bucket_id}", resource.address
    return resource


def test_the_hardening_module_blocks_public_access_enforces_ownership_and_versions():
    ownership = hardening_resource("aws_s3_bucket_ownership_controls").body
    assert tf.literal(first(ownership, "rule").get("object_ownership")) == "BucketOwnerEnforced"
    public_access = hardening_resource("aws_s3_bucket_public_access_block").body
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    assert all(public_access[flag] is True for flag in flags), public_access
    versioning = hardening_resource("aws_s3_bucket_versioning").body
    assert tf.literal(first(versioning, "versioning_configuration").get("status")) == "Enabled"


@pytest.mark.parametrize("bucket", tf.resources("aws_s3_bucket"), ids=lambda b: b.address)
def test_every_bucket_blocks_public_access_and_is_versioned(bucket):
    """Through its one s3_bucket_hardening call; none of these written again beside the bucket."""
    calls = [
        b
        for b in tf.blocks()
        if b.kind == "module"
        and b.module == bucket.module
        and tf.literal(b.body.get("source")) == "../s3_bucket_hardening"
        and refers_to_bucket(b, bucket, "bucket_id")
    ]
    assert len(calls) == 1, f"{bucket.address}: expected one s3_bucket_hardening call, found {len(calls)}"
    for type_ in HARDENING_TYPES:
        beside = [b for b in tf.resources(type_) if b.module == bucket.module]
        assert not beside, f"{bucket.address}: {type_} belongs in modules/s3_bucket_hardening"


def _monitoring_key_statements() -> dict[str, dict]:
    [kms] = [b for b in tf.blocks() if b.kind == "module" and b.module == "modules/monitoring" and b.name == "kms"]
    return {tf.unquote(s["sid"]): s for s in kms.body["service_principal_statements"]}


def test_monitoring_key_lets_log_delivery_use_it_for_the_encrypted_state_machines():
    """The state machines are encrypted with the monitoring key and log into a log group encrypted with it:
    CloudWatch Logs encrypts the group (its regional principal, with the log group in the encryption context) and
    the vended-log delivery service decrypts the execution data it delivers."""
    [machine] = tf.resources("aws_sfn_state_machine")
    encryption = machine.body["encryption_configuration"][0]
    assert tf.unquote(encryption["type"]) == "CUSTOMER_MANAGED_KMS_KEY"
    assert encryption["kms_key_id"] == "${var.monitoring_kms_key_arn}"
    [group] = [g for g in tf.resources("aws_cloudwatch_log_group") if g.module == "modules/step_functions"]
    assert group.body["kms_key_id"] == "${var.monitoring_kms_key_arn}"

    statements = _monitoring_key_statements().values()
    by_service = {tf.unquote(service): statement for statement in statements for service in statement["services"]}
    logs = by_service["logs.${local.region}.amazonaws.com"]
    assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"} <= {tf.unquote(a) for a in logs["actions"]}
    [context] = [c for c in logs["conditions"] if tf.unquote(c["variable"]) == "kms:EncryptionContext:aws:logs:arn"]
    assert [tf.unquote(v) for v in context["values"]] == [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
    ]
    assert "delivery.logs.amazonaws.com" in by_service, "no key-policy statement for the log-delivery service"
    delivery = by_service["delivery.logs.amazonaws.com"]
    assert [tf.unquote(a) for a in delivery["actions"]] == ["kms:Decrypt"]
    conditions = {tf.unquote(c["variable"]): [tf.unquote(v) for v in c["values"]] for c in delivery["conditions"]}
    assert conditions == {
        "aws:SourceAccount": ["${local.account_id}"],
        "aws:SourceArn": ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"],
    }
