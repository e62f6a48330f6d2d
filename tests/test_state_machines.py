"""Static checks of state_machines/*.asl.json: valid ASL, known placeholders, intended integrations only, and
the lease discipline (never released before it is taken; released on every way out after it is taken)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections import deque
from pathlib import Path

import pytest

from devtools.local_runner import (
    PLACEHOLDERS,
    LocalServices,
    fill_template,
    template_placeholders,
    validate_definition,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
MACHINES = ("stream", "daily")
ASL_VALIDATOR = REPO_ROOT / ".tools" / "node" / "node_modules" / ".bin" / "asl-validator"
INTENDED_RESOURCES = {
    "arn:aws:states:::emr-serverless:startJobRun.sync",
    "arn:aws:states:::dynamodb:putItem",
    "arn:aws:states:::dynamodb:getItem",
    "arn:aws:states:::dynamodb:deleteItem",
    "arn:aws:states:::aws-sdk:sfn:describeExecution",
    "arn:aws:states:::sns:publish",
}
CLIENT_TOKEN = "States.Hash(States.Format('{}/{}/{}', $$.Execution.Name, $$.State.Name, $$.State.RetryCount), 'MD5')"
LEASE_KEY = {"lease_id": {"S": "card-features-pipeline"}}
EMR_TRANSIENT = {"EMRServerless.InternalServerException"}


def raw_text(machine: str) -> str:
    return (REPO_ROOT / "state_machines" / f"{machine}.asl.json").read_text(encoding="utf-8")


def definition(machine: str) -> dict:
    return json.loads(fill_template(raw_text(machine), {name: f"<{name}>" for name in PLACEHOLDERS}))


def edges(state: dict) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [rule["Next"] for rule in state.get("Choices", [])]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return [target for target in targets if target]


def is_self_release(state: dict) -> bool:
    parameters = state.get("Parameters", {})
    return (
        state.get("Resource") == "arn:aws:states:::dynamodb:deleteItem"
        and parameters.get("Key") == LEASE_KEY
        and parameters.get("ExpressionAttributeValues", {}).get(":self") == {"S.$": "$$.Execution.Id"}
    )


def acquired_entries(states: dict) -> set[str]:
    """The states entered with the lease held: AcquireLease's success and 'the holder is this execution'."""
    entries = {states["AcquireLease"]["Next"]}
    for rule in states["LeaseHolder?"]["Choices"]:
        if rule.get("StringEqualsPath") == "$.execution_id":
            entries.add(rule["Next"])
    return entries


@pytest.mark.parametrize("machine", MACHINES)
def test_asl_validator_accepts_the_definition(machine):
    if not ASL_VALIDATOR.exists():
        pytest.fail(f"{ASL_VALIDATOR} is missing: run `make setup`")
    result = subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(REPO_ROOT / "state_machines" / f"{machine}.asl.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_placeholders_are_exactly_the_terraform_template_variables():
    used = set().union(*(template_placeholders(raw_text(machine)) for machine in MACHINES))
    assert used == set(PLACEHOLDERS)
    main_tf = (REPO_ROOT / "infra/terraform/modules/step_functions/main.tf").read_text(encoding="utf-8")
    block = re.search(r"template_variables = \{(.*?)\n  \}", main_tf, re.DOTALL).group(1)
    terraform = set(re.findall(r"^\s*([a-z_]+)\s*=", block, re.MULTILINE))
    assert terraform == set(PLACEHOLDERS)
    for machine in MACHINES:
        text = raw_text(machine)
        assert "%{" not in text, "templatefile() would read %{ as a directive"
        assert "$${" not in text


@pytest.mark.parametrize("machine", MACHINES)
def test_every_resource_is_an_intended_integration_the_runner_implements(machine):
    states = definition(machine)["States"]
    resources = {state["Resource"] for state in states.values() if state["Type"] == "Task"}
    assert resources <= INTENDED_RESOURCES
    assert set(LocalServices.RESOURCES) == INTENDED_RESOURCES
    validate_definition(definition(machine), LocalServices.RESOURCES)


@pytest.mark.parametrize("machine", MACHINES)
def test_job_states(machine):
    states = definition(machine)["States"]
    jobs = {
        name: s for name, s in states.items() if s.get("Resource", "").startswith("arn:aws:states:::emr-serverless")
    }
    assert len(jobs) == {"stream": 2, "daily": 3}[machine]
    for name, state in jobs.items():
        parameters = state["Parameters"]
        assert parameters["ClientToken.$"] == CLIENT_TOKEN, name
        assert parameters["ApplicationId"] == "<emr_application_id>"
        assert parameters["ExecutionRoleArn"] == "<emr_job_role_arn>"
        assert parameters["ExecutionTimeoutMinutes"] * 60 < state["TimeoutSeconds"], name
        spark_submit = parameters["JobDriver"]["SparkSubmit"]
        assert spark_submit["EntryPoint"].startswith("<code_uri>/")
        options = spark_submit["SparkSubmitParameters"]
        assert "--py-files <code_uri>/lakehouse.zip" in options
        assert "spark.delta.logStore.s3.impl=io.delta.storage.S3DynamoDBLogStore" in options
        assert "S3DynamoDBLogStore.ddb.tableName=<delta_log_table_name>" in options
        assert "S3DynamoDBLogStore.ddb.region=<aws_region>" in options
        logging = parameters["ConfigurationOverrides"]["MonitoringConfiguration"]["CloudWatchLoggingConfiguration"]
        assert logging["Enabled"] is True and logging["LogGroupName"] == "<log_group_name>"
        assert "STDOUT" in logging["LogTypes"]["SPARK_DRIVER"]  # the EMF metric lines
        retrier = state["Retry"][0]
        assert set(retrier["ErrorEquals"]) >= EMR_TRANSIENT
        assert "States.ALL" not in retrier["ErrorEquals"] and "States.TaskFailed" not in retrier["ErrorEquals"]
        assert retrier["BackoffRate"] > 1 and retrier["MaxAttempts"] >= 2
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": f"{name}Failed"}]
        record = states[f"{name}Failed"]
        assert record["Parameters"] == {"execution.$": "$$.Execution.Id", "state": name, "error.$": "$.caught"}
        assert record["Next"] == "NotifyFailure"
    notify = states["NotifyFailure"]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == "<alerts_topic_arn>"
    assert notify["Parameters"]["Message.$"] == "States.JsonToString($.failure)"
    assert notify["Next"] == "ReleaseLeaseAfterFailure" and notify["Catch"][0]["Next"] == "ReleaseLeaseAfterFailure"
    assert is_self_release(states["ReleaseLeaseAfterFailure"])
    assert states[states["ReleaseLeaseAfterFailure"]["Next"]]["Type"] == "Fail"


def emr_serverless_errors() -> dict[str, set[str]]:
    """The errors each operation of the .sync integration (StartJobRun, then GetJobRun polling, CancelJobRun on a
    timeout) may raise, from the EMR Serverless service model shipped in botocore."""
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("emr-serverless", "service-2")
    return {
        operation: {error["shape"] for error in model["operations"][operation].get("errors", [])}
        for operation in ("StartJobRun", "GetJobRun", "CancelJobRun")
    }


@pytest.mark.parametrize("machine", MACHINES)
def test_job_retries_name_only_errors_step_functions_reports(machine):
    """Step Functions reports an API error of the integration as EMRServerless.<shape>, and a job run that ends
    FAILED (including one refused for the account's vCPU quota) as States.TaskFailed: a retrier naming anything
    else never fires."""
    api_errors = set().union(*emr_serverless_errors().values())
    assert "ThrottlingException" not in api_errors and "ServiceQuotaExceededException" not in api_errors
    states = definition(machine)["States"]
    for name, state in states.items():
        if not state.get("Resource", "").startswith("arn:aws:states:::emr-serverless:"):
            continue
        for handler in state.get("Retry", []) + state.get("Catch", []):
            for error in handler["ErrorEquals"]:
                service, _, shape = error.partition(".")
                assert (service == "States") or (service == "EMRServerless" and shape in api_errors), (
                    f"{machine}.{name} names {error}, which the startJobRun.sync integration never reports"
                )


def test_the_client_token_fits_the_api():
    """MD5 hex: 32 characters of [0-9a-f], within StartJobRun's 64 characters of [A-Za-z0-9._-]."""
    name = "daily-20260102T000500Z-" + "x" * 57  # the longest execution name Step Functions allows (80)
    token = hashlib.md5(f"{name}/RunDailySilverAndGold/3".encode()).hexdigest()
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", token)


EXECUTION_NAME = "daily-20260102T000500Z"
TRACE_CONTEXT = {
    "Execution": {"Id": f"arn:aws:states:eu-west-1:123456789012:execution:card-features-daily:{EXECUTION_NAME}",
                  "Name": EXECUTION_NAME, "RedriveCount": 0},
    "State": {"Name": "?", "RetryCount": 0},
}  # fmt: skip


def job_arguments(machine: str, state: str, *, retry: int = 0, redrive: int = 0) -> list[str]:
    """A job state's EntryPointArguments as Step Functions passes them (the intrinsic evaluated)."""
    from devtools.local_runner import evaluate_intrinsic

    driver = definition(machine)["States"][state]["Parameters"]["JobDriver"]["SparkSubmit"]
    context = json.loads(json.dumps(TRACE_CONTEXT))
    context["State"] = {"Name": state, "RetryCount": retry}
    context["Execution"]["RedriveCount"] = redrive
    now = "2026-01-02T00:05:00Z"
    data = {"day": {"scheduled_time": now, "now": now}, "clock": {"now": now}}
    return evaluate_intrinsic(driver["EntryPointArguments.$"], data, context)


def trace_arguments(state: str, retry: int = 0) -> list[str]:
    return ["--run-id", f"{EXECUTION_NAME}.{state}.0.{retry}", "--execution-arn", TRACE_CONTEXT["Execution"]["Id"]]


# silver_and_gold's clock and the stream's timing (tests/test_clocks.py; filled by Terraform)
CLOCK_ARGUMENTS = [
    "--now", "2026-01-02T00:05:00Z", "--lookback-hours", "<bronze_lookback_hours>",
    "--firehose-buffering-seconds", "<firehose_buffering_seconds>",
    "--stream-retention-hours", "<stream_retention_hours>",
]  # fmt: skip


def test_job_arguments():
    assert job_arguments("stream", "RunSilverAndGold") == [
        "--mode", "stream", "--lake-root", "<lake_root>", "--region", "<aws_region>",
        "--glue-database", "<glue_database>",
        "--card-token-secret-id", "<card_token_secret_id>", "--event-id-index-table", "<event_id_index_table>",
        "--fx-rates", "<code_uri>/spark_jobs/reference_data/fx_rates.csv",
        *CLOCK_ARGUMENTS, *trace_arguments("RunSilverAndGold"),
    ]  # fmt: skip
    stream = definition("stream")["States"]
    assert stream["IngestFeatures"]["Parameters"]["JobDriver"]["SparkSubmit"]["EntryPoint"] == (
        "<code_uri>/feature_store/ingest_features.py"
    )
    arguments = job_arguments("stream", "IngestFeatures")
    assert arguments[:2] == ["--backend", "<feature_store_backend>"]
    assert "--online-store-path" not in arguments  # never an empty argument on AWS (the local runner adds it)
    assert arguments[arguments.index("--online-state-table") + 1] == "<online_state_table>"
    assert arguments[-4:] == trace_arguments("IngestFeatures")
    daily = definition("daily")["States"]
    assert [name for name in daily if daily[name].get("Resource", "").startswith("arn:aws:states:::emr")] == [
        "RunDailySilverAndGold",
        "BuildDatasets",
        "IngestFeatures",
    ]
    assert job_arguments("daily", "RunDailySilverAndGold", retry=2) == [
        "--mode", "daily", "--lake-root", "<lake_root>", "--region", "<aws_region>",
        "--glue-database", "<glue_database>",
        "--card-token-secret-id", "<card_token_secret_id>", "--event-id-index-table", "<event_id_index_table>",
        "--fx-rates", "<code_uri>/spark_jobs/reference_data/fx_rates.csv",
        "--scheduled-time", "2026-01-02T00:05:00Z", *CLOCK_ARGUMENTS,
        *trace_arguments("RunDailySilverAndGold", retry=2),
    ]  # fmt: skip
    assert daily["BuildDatasets"]["Parameters"]["JobDriver"]["SparkSubmit"]["EntryPoint"] == (
        "<code_uri>/spark_jobs/build_datasets.py"
    )
    assert job_arguments("daily", "BuildDatasets") == [
        "--lake-root", "<lake_root>", "--region", "<aws_region>", "--scheduled-time", "2026-01-02T00:05:00Z",
        *trace_arguments("BuildDatasets"),
    ]  # fmt: skip
    assert daily["UseScheduledTime"]["Parameters"] == {
        "scheduled_time.$": "$.input.scheduled_time",
        "now.$": "$.input.scheduled_time",
    }
    assert daily["UseExecutionStartTime"]["Parameters"] == {
        "scheduled_time.$": "$$.Execution.StartTime",
        "now.$": "$$.Execution.StartTime",
    }


def test_every_job_run_of_an_execution_has_its_own_run_id_and_the_execution_arn():
    """Jobs, retries and redrives of one execution never share a run id (the report's file name), and
    each job's own parser accepts the arguments the state machine passes."""
    from feature_store.ingest_features import parse_args as ingest_args
    from spark_jobs.build_datasets import parse_args as datasets_args
    from spark_jobs.silver_and_gold import parse_args as silver_args

    parsers = {"RunSilverAndGold": silver_args, "RunDailySilverAndGold": silver_args,
               "BuildDatasets": datasets_args, "IngestFeatures": ingest_args}  # fmt: skip
    run_ids = []
    for machine in MACHINES:
        states = definition(machine)["States"]
        for state in [name for name in states if states[name].get("Resource", "").endswith("startJobRun.sync")]:
            for retry, redrive in ((0, 0), (1, 0), (0, 1)):
                arguments = [
                    value.replace("<lake_root>", "s3://lake/root").replace("<code_uri>", "s3://code")
                    for value in job_arguments(machine, state, retry=retry, redrive=redrive)
                ]
                args = parsers[state](_filled(arguments))
                assert args.execution_arn == TRACE_CONTEXT["Execution"]["Id"]
                run_ids.append((machine, args.run_id))
    assert len(set(run_ids)) == len(run_ids) == 15


def _filled(arguments: list[str]) -> list[str]:
    """Placeholders filled as on AWS: never an empty value (EMR drops an empty argument)."""
    values = {"<feature_store_backend>": "sagemaker", "<online_state_table>": "online-state",
              "<aws_region>": "eu-west-1", "<glue_database>": "card_features",
              "<card_token_secret_id>": "card-features/card-token-key", "<bronze_lookback_hours>": "24",
              "<firehose_buffering_seconds>": "300", "<stream_retention_hours>": "24"}  # fmt: skip
    filled = [values.get(given, given) for given in arguments]
    assert "" not in filled
    return filled


@pytest.mark.parametrize("day", ["2026-02-14", "2026-02-28", "2026-12-31", "2028-02-29"])
def test_a_date_override_is_the_scheduled_time_of_that_days_run(day):
    """{"date": D} → D 23:00 at UTC-1 = D+1 00:00 UTC: silver processes D, the datasets are as of D+1."""
    from datetime import date, timedelta

    from devtools.local_runner import evaluate_intrinsic
    from spark_jobs.build_datasets import parse_args as datasets_args
    from spark_jobs.silver_and_gold import parse_args as silver_args

    expression = definition("daily")["States"]["UseDate"]["Parameters"]["scheduled_time.$"]
    scheduled = evaluate_intrinsic(expression, {"input": {"date": day}}, {})
    assert silver_args(["--mode", "daily", "--scheduled-time", scheduled]).date == date.fromisoformat(day)
    assert datasets_args(["--scheduled-time", scheduled]).as_of == date.fromisoformat(day) + timedelta(days=1)


@pytest.mark.parametrize("machine", MACHINES)
def test_lease_is_taken_with_attribute_not_exists_and_the_execution_id(machine):
    states = definition(machine)["States"]
    acquire = states["AcquireLease"]["Parameters"]
    assert acquire["TableName"] == "<lease_table_name>"
    assert acquire["Item"]["lease_id"] == {"S": "card-features-pipeline"}
    assert acquire["Item"]["holder"] == {"S.$": "$$.Execution.Id"}
    assert acquire["ConditionExpression"] == "attribute_not_exists(lease_id)"
    catchers = states["AcquireLease"]["Catch"]
    assert catchers[0]["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
    assert catchers[0]["Next"] == "ReadLeaseHolder"
    assert states["DescribeLeaseHolder"]["Resource"] == "arn:aws:states:::aws-sdk:sfn:describeExecution"
    stale = states["ReleaseStaleLease"]["Parameters"]
    assert stale["ConditionExpression"] == "#holder = :stale_holder"
    assert stale["ExpressionAttributeValues"] == {":stale_holder": {"S.$": "$.lease.Item.holder.S"}}


@pytest.mark.parametrize("machine", MACHINES)
def test_no_release_before_the_lease_is_taken(machine):
    states = definition(machine)["States"]
    entries = acquired_entries(states)
    seen, queue = set(), deque([definition(machine)["StartAt"]])
    while queue:
        name = queue.popleft()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        for target in edges(state):
            acquired_edge = (name == "AcquireLease" and target == state["Next"]) or (
                name == "LeaseHolder?" and target in entries
            )
            if not acquired_edge:
                queue.append(target)
    assert not [name for name in seen if is_self_release(states[name])]
    assert "NotifyLeaseFailure" in seen and "Failed" in seen  # failures before the lease alert and fail


@pytest.mark.parametrize("machine", MACHINES)
def test_every_way_out_after_the_lease_is_taken_releases_it(machine):
    """Without the release states, no Succeed or Fail is reachable from where the lease is held."""
    states = definition(machine)["States"]
    seen, queue = set(), deque(acquired_entries(states))
    while queue:
        name = queue.popleft()
        if name in seen or is_self_release(states[name]):
            continue
        seen.add(name)
        assert states[name]["Type"] not in ("Succeed", "Fail"), f"{name} is reachable without a release"
        queue.extend(edges(states[name]))
    assert {"ReleaseLease", "ReleaseLeaseAfterFailure"} <= {n for n in states if is_self_release(states[n])}


def test_stream_skips_on_a_live_holder_or_a_pending_daily():
    states = definition("stream")["States"]
    live = [{"Variable": "$.lease_holder.status", "StringEquals": status} for status in ("RUNNING", "PENDING_REDRIVE")]
    assert states["LeaseHolderRunning?"]["Choices"][0] == {"Or": live, "Next": "SkipForLiveHolder"}
    for skip in ("SkipForLiveHolder", "SkipForDaily"):
        assert states[skip]["Parameters"]["status"] == "skipped"
        assert states[states[skip]["Next"]]["Type"] == "Succeed"
    assert definition("stream")["StartAt"] == "Init"
    assert states["Init"]["Next"] == "ChooseClock"  # the run's --now first, then the daily flag
    assert {states[name]["Next"] for name in ("ClockFromSchedule", "ClockFromExecutionStart")} == {"CheckDailyPending"}
    assert states["CheckDailyPending"]["Parameters"]["Key"] == {
        "lease_id": {"S": "card-features-pipeline#daily-pending"}
    }


def test_daily_waits_two_hours_for_the_lease_then_alerts():
    states = definition("daily")["States"]
    assert states["LeaseHolderRunning?"]["Choices"][0]["Next"] == "LeaseWaitExhausted?"
    attempts = states["LeaseWaitExhausted?"]["Choices"][0]["NumericGreaterThanEquals"]
    assert attempts * states["WaitForLease"]["Seconds"] == 2 * 3600
    assert states["CountLeaseWait"]["Parameters"] == {"attempts.$": "States.MathAdd($.lease_wait.attempts, 1)"}
    assert states["LeaseWaitTimedOut"]["Next"] == "NotifyLeaseFailure"
    assert states["MarkDailyPending"]["Parameters"]["Item"]["lease_id"] == {"S": "card-features-pipeline#daily-pending"}
    assert states["ChooseDay"]["Choices"][0]["Variable"] == "$.input.date"


CLOCK_CHOICE = {"stream": "ChooseClock", "daily": "ChooseDay"}  # where each machine decides its --now


def clock_data(machine: str, execution_input: dict, context: dict) -> dict:
    """The execution's data after its clock states: the Choice on the input, then the chosen Pass state."""
    from devtools.local_runner import apply_result_path, choice_rule_matches, resolve

    states = definition(machine)["States"]
    data = {"input": execution_input}
    choice = states[CLOCK_CHOICE[machine]]
    chosen = next((rule["Next"] for rule in choice["Choices"] if choice_rule_matches(rule, data, context)), None)
    shaping = states[chosen or choice["Default"]]
    assert shaping["Type"] == "Pass"
    result = {}
    for key, value in shaping["Parameters"].items():
        if key.endswith(".$"):
            from devtools.local_runner import evaluate_intrinsic

            is_intrinsic = value.startswith("States.")
            result[key[:-2]] = (evaluate_intrinsic if is_intrinsic else resolve)(value, data, context, where=key)
        else:
            result[key] = value
    return apply_result_path(data, shaping["ResultPath"], result)


@pytest.mark.parametrize(
    ("machine", "state", "execution_input", "now"),
    [
        ("stream", "RunSilverAndGold", {"scheduled_time": "2026-01-02T00:10:00Z"}, "2026-01-02T00:10:00Z"),
        ("stream", "RunSilverAndGold", {}, "2026-01-02T00:10:07.123Z"),  # a manual run: its start time
        ("daily", "RunDailySilverAndGold", {"scheduled_time": "2026-01-02T00:05:00Z"}, "2026-01-02T00:05:00Z"),
        ("daily", "RunDailySilverAndGold", {"date": "2025-12-01"}, "2026-01-02T00:10:07.123Z"),  # a rerun: now
        ("daily", "RunDailySilverAndGold", {}, "2026-01-02T00:10:07.123Z"),
    ],
)
def test_silver_and_gold_gets_now_from_the_schedule_else_the_execution_start(machine, state, execution_input, now):
    """--now is the schedule's time, else (a manual run, a rerun of a past day) the execution's start, so
    future ingest_dt= folders are judged against the clock of the run, never a past day's; the stream's
    buffering and retention come from Terraform with the lookback, which the job checks against them."""
    from devtools.local_runner import evaluate_intrinsic
    from spark_jobs.silver_and_gold import parse_args

    states = definition(machine)["States"]
    assert states["Init"]["Next"] == CLOCK_CHOICE[machine] or machine == "daily"
    context = json.loads(json.dumps(TRACE_CONTEXT))
    context["Execution"]["StartTime"] = "2026-01-02T00:10:07.123Z"
    context["State"] = {"Name": state, "RetryCount": 0}
    data = clock_data(machine, execution_input, context)
    driver = states[state]["Parameters"]["JobDriver"]["SparkSubmit"]
    arguments = evaluate_intrinsic(driver["EntryPointArguments.$"], data, context)
    assert arguments[arguments.index("--now") + 1] == now
    timing = {"<bronze_lookback_hours>": "24", "<firehose_buffering_seconds>": "300", "<stream_retention_hours>": "24"}
    for option, placeholder in zip(
        ("--lookback-hours", "--firehose-buffering-seconds", "--stream-retention-hours"), timing, strict=True
    ):
        assert arguments[arguments.index(option) + 1] == placeholder
    filled = [timing.get(value, value).replace("<lake_root>", "s3://lake/root") for value in arguments]
    args = parse_args(_filled([value.replace("<code_uri>", "s3://code") for value in filled]))
    assert args.now.isoformat()[:19] == now[:19] and args.lookback_hours == 24
