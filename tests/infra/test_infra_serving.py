"""Request-time serving on AWS: the online state table, the serving Lambda and who may touch the state."""

from __future__ import annotations

import re

from tests.infra import infra_model as tf

STATE = "modules/online_state"
SERVING = "modules/feature_serving"


def only(blocks: list[tf.Block]) -> tf.Block:
    assert len(blocks) == 1, [b.address for b in blocks]
    return blocks[0]


def first(body: dict, name: str) -> dict:
    value = body.get(name, [{}])
    return value[0] if isinstance(value, list) and value else {}


def module_call(module: str, source_suffix: str) -> tf.Block:
    return only(
        [
            b
            for b in tf.blocks()
            if b.kind == "module"
            and b.module == module
            and str(tf.literal(b.body.get("source"))).endswith("/" + source_suffix)
        ]
    )


def granted(module: str, document: str) -> dict[str, set[str]]:
    """sid -> actions of the Allow statements of one policy document."""
    return {
        s.sid: set(s.actions or [])
        for s in tf.statements()
        if s.module == module and s.document == document and s.effect == "Allow"
    }


def test_online_state_table_keys_order_a_cards_events_by_time():
    table = only([b for b in tf.resources("aws_dynamodb_table") if b.module == STATE])
    body = table.body
    assert tf.literal(body["hash_key"]) == "card_id" and tf.literal(body["range_key"]) == "sk"
    attributes = {tf.literal(a["name"]): tf.literal(a["type"]) for a in body["attribute"]}
    assert attributes == {"card_id": "S", "sk": "S"}, "only key attributes are declared"
    assert tf.literal(body["billing_mode"]) == "PAY_PER_REQUEST"
    assert first(body, "point_in_time_recovery").get("enabled") is True
    assert first(body, "ttl").get("enabled") is True
    assert first(body, "ttl")["attribute_name"] == "${var.ttl_attribute_name}"
    [ttl_variable] = [
        b for b in tf.blocks() if b.kind == "variable" and b.module == STATE and b.name == "ttl_attribute_name"
    ]
    assert tf.literal(ttl_variable.body["default"]) == "expires_at"
    assert first(body, "server_side_encryption")["kms_key_arn"] == "${module.kms.key_arn}"
    assert body["deletion_protection_enabled"] == "${var.deletion_protection}"


def test_platform_protects_the_state_table_like_the_other_tables():
    call = module_call("modules/platform", "online_state")
    assert call.body["deletion_protection"] == "${var.protect_data}"
    prod = (tf.TERRAFORM_ROOT / "envs" / "prod" / "terraform.tfvars.example").read_text(encoding="utf-8")
    assert not re.search(r"^\s*protect_data\s*=\s*false", prod, flags=re.M), "prod keeps deletion protection"


def test_serving_role_is_exactly_what_the_design_allows():
    statements = granted(SERVING, "this")
    assert statements["ReadAndWriteBackOnlineState"] == {
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:TransactWriteItems",
    }
    every_action = set().union(*statements.values())
    assert {a for a in every_action if a.startswith("dynamodb:")} == statements["ReadAndWriteBackOnlineState"]
    assert {a for a in every_action if a.startswith("s3:")} == {"s3:GetObject"}
    assert {a for a in every_action if a.startswith("secretsmanager:")} == {"secretsmanager:GetSecretValue"}
    assert {a for a in every_action if a.startswith("kms:")} == {"kms:Decrypt", "kms:GenerateDataKey"}
    # merchant features: BatchGetRecord (the record and the published-day marker in one call) of the merchant
    # group, nothing else of SageMaker
    assert {a for a in every_action if a.startswith("sagemaker:")} == {"sagemaker:BatchGetRecord"}
    assert statements["ReadMerchantFeatureGroup"] == {"sagemaker:BatchGetRecord"}
    assert {a.split(":")[0] for a in every_action} == {
        "dynamodb",
        "s3",
        "secretsmanager",
        "kms",
        "logs",
        "ec2",
        "sagemaker",
    }
    assert granted(SERVING, "tracing") == {"WriteTraces": {"xray:PutTelemetryRecords", "xray:PutTraceSegments"}}


def test_serving_role_names_exact_resources():
    by_sid = {s.sid: s for s in tf.statements() if s.module == SERVING and s.document == "this"}
    assert by_sid["ReadAndWriteBackOnlineState"].resources == ["${var.online_state_table_arn}"]
    assert by_sid["ReadCardTokenKey"].resources == ["${var.card_token_secret_arn}"]
    assert by_sid["ReadReferenceDataAndModel"].resources == ["${local.readable_objects}"]
    assert by_sid["WriteOwnLogs"].resources == ['"${aws_cloudwatch_log_group.this.arn}:*"']
    merchant_group = by_sid["ReadMerchantFeatureGroup"].resources
    assert len(merchant_group) == 1 and merchant_group[0].endswith(':feature-group/${var.merchant_feature_group_name}"')
    assert by_sid["DecryptMerchantFeatureRecords"].resources == ["${var.online_store_kms_key_arn}"]
    objects = tf.module_locals(SERVING)["readable_objects"]
    assert "*" not in str(objects).replace("${", ""), "exact objects, no wildcard"


def test_serving_function_runs_the_shipped_bundle_in_the_vpc():
    function = only(tf.resources("aws_lambda_function"))
    body = function.body
    assert function.module == SERVING
    assert tf.literal(body["runtime"]) == "python3.11"
    assert tf.literal(body["handler"]) == "feature_store.serving_lambda.handler"
    assert body["s3_key"] == "${var.code_key}"
    assert "kms_key_arn" in body and "reserved_concurrent_executions" in body
    vpc = first(body, "vpc_config")
    assert vpc["subnet_ids"] == "${var.subnet_ids}" and vpc["security_group_ids"] == ["${aws_security_group.this.id}"]
    environment = tf.module_locals(SERVING)["environment"]
    for name in (
        "ONLINE_STATE_TABLE",
        "CARD_TOKEN_SECRET_ID",
        "FX_RATES_URI",
        "FEATURE_SET_VERSION",
        "MODEL_URI",
        "MERCHANT_FEATURE_GROUP",
    ):
        assert name in str(environment), f"{name} is not in the function's environment"
    call = module_call("modules/platform", "feature_serving")
    assert call.body["code_key"] == '"${local.code_prefix}/lakehouse.zip"'


def test_serving_security_group_only_talks_https_to_endpoints():
    egress = [b for b in tf.resources("aws_vpc_security_group_egress_rule") if b.module == SERVING]
    assert {b.name for b in egress} == {"to_gateway_endpoints", "to_interface_endpoints"}
    for rule in egress:
        assert tf.literal(rule.body["ip_protocol"]) == "tcp"
        assert rule.body["from_port"] == 443 and rule.body["to_port"] == 443
        assert "cidr_ipv4" not in rule.body and "cidr_ipv6" not in rule.body, f"{rule.address}: no CIDR egress"
    network_services = tf.module_locals("modules/network")["gateway_services"]
    assert "dynamodb" in str(network_services) and "s3" in str(network_services)
    [interface] = [
        b
        for b in tf.blocks()
        if b.kind == "variable" and b.module == "modules/network" and b.name == "interface_endpoint_services"
    ]
    assert "secretsmanager" in [tf.literal(s) for s in interface.body["default"]], "the card-token secret's endpoint"


def test_invocation_is_iam_authenticated_only():
    for url in tf.resources("aws_lambda_function_url"):
        assert tf.literal(url.body["authorization_type"]) == "AWS_IAM", url.address
    permissions = [b for b in tf.resources("aws_lambda_permission") if b.module == SERVING]
    assert permissions
    for permission in permissions:
        assert tf.literal(permission.body["principal"]) != "*", permission.address
        assert permission.body["principal"] == "${each.value}", "principals come from invoker_principal_arns"
        assert "invoker_principal_arns" in str(permission.body["for_each"])
    [variable] = [
        b for b in tf.blocks() if b.kind == "variable" and b.module == SERVING and b.name == "invoker_principal_arns"
    ]
    condition = str(variable.body["validation"][0]["condition"])
    assert ":iam::" in condition and "role|user" in condition


def test_serving_alarms_cover_errors_and_p99_and_link_to_the_runbook():
    alarms = {b.name: b.body for b in tf.resources("aws_cloudwatch_metric_alarm") if b.module == SERVING}
    assert set(alarms) == {"errors", "p99_duration"}
    assert tf.literal(alarms["errors"]["metric_name"]) == "Errors"
    assert tf.literal(alarms["errors"]["comparison_operator"]) == "GreaterThanThreshold"
    assert alarms["errors"]["threshold"] == 0
    assert tf.literal(alarms["p99_duration"]["metric_name"]) == "Duration"
    assert tf.literal(alarms["p99_duration"]["extended_statistic"]) == "p99"
    assert alarms["p99_duration"]["threshold"] == "${var.p99_duration_threshold_ms}"
    for name, body in alarms.items():
        assert body["alarm_actions"] == "${local.alarm_actions}", name
        assert "${var.runbook_url}#prefix-feature-serving-" in str(body["alarm_description"]), name


def test_emr_jobs_keep_the_online_state_in_line():
    statements = granted("modules/emr_serverless", "this")
    assert statements["KeepOnlineStateInLine"] >= {
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }
    [statement] = [s for s in tf.statements() if s.key == ("modules/emr_serverless", "this", "KeepOnlineStateInLine")]
    assert statement.resources == ["${var.online_state_table_arn}"]
    call = module_call("modules/platform", "emr_serverless")
    assert call.body["online_state_table_arn"] == "${module.online_state.table_arn}"


def test_state_machines_receive_the_online_state_table():
    variables = tf.module_locals("modules/step_functions")["template_variables"]
    assert variables["online_state_table"] == "${var.online_state_table_name}"
    call = module_call("modules/platform", "step_functions")
    assert call.body["online_state_table_name"] == "${module.online_state.table_name}"
