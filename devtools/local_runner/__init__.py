"""The local runner of the Step Functions state machines: the same state_machines/*.asl.json Terraform deploys,
their placeholders filled from a local configuration, walked state by state with local stand-ins for the
integrations (spark-submit for EMR Serverless, JSON files for DynamoDB, a registry of executions, an alerts log).

    definition    the templatefile() placeholders and the local configuration's constants
    paths, payloads, intrinsics, choice_rules    the ASL language (JSONPath, templates, intrinsics, rules, errors)
    validation    refuses what the runner cannot run, by name, before the first state
    dynamodb, executions, alerts, emr, services  the service emulators
    interpreter   walks one execution
    pipeline      run_pipeline(): one execution with the local configuration and services
    command       what scripts/run_pipeline.py runs
    lease         the pipeline lease for the replays run by hand (this runner's table, or DynamoDB for an S3 lake)
"""

from devtools.local_runner.alerts import LocalAlerts
from devtools.local_runner.choice_rules import choice_rule_matches, error_matches, retry_delay
from devtools.local_runner.command import RunRequest, execution_input_for, run_command
from devtools.local_runner.definition import (
    LOCAL_ACCOUNT,
    MODES,
    PLACEHOLDERS,
    STATE_MACHINES_DIR,
    fill_template,
    load_definition,
    template_placeholders,
)
from devtools.local_runner.dynamodb import LocalDynamoDB, file_lock
from devtools.local_runner.emr import JobRequest, SparkSubmitLauncher
from devtools.local_runner.errors import DefinitionError, StatesError, UnsupportedConstruct
from devtools.local_runner.executions import ExecutionRegistry
from devtools.local_runner.interpreter import ExecutionResult, Interpreter, StateRecord
from devtools.local_runner.intrinsics import SUPPORTED_INTRINSICS, evaluate_intrinsic, parse_intrinsic
from devtools.local_runner.paths import apply_result_path, parse_path, resolve
from devtools.local_runner.payloads import render_payload
from devtools.local_runner.pipeline import (
    default_state_dir,
    local_config,
    register_local_feature_group,
    run_pipeline,
    summary_lines,
)
from devtools.local_runner.services import LocalServices
from devtools.local_runner.validation import validate_definition

__all__ = [
    "LOCAL_ACCOUNT",
    "MODES",
    "PLACEHOLDERS",
    "STATE_MACHINES_DIR",
    "SUPPORTED_INTRINSICS",
    "DefinitionError",
    "ExecutionRegistry",
    "ExecutionResult",
    "Interpreter",
    "JobRequest",
    "LocalAlerts",
    "LocalDynamoDB",
    "LocalServices",
    "RunRequest",
    "SparkSubmitLauncher",
    "StateRecord",
    "StatesError",
    "UnsupportedConstruct",
    "apply_result_path",
    "choice_rule_matches",
    "default_state_dir",
    "error_matches",
    "evaluate_intrinsic",
    "execution_input_for",
    "file_lock",
    "fill_template",
    "load_definition",
    "local_config",
    "parse_intrinsic",
    "parse_path",
    "register_local_feature_group",
    "render_payload",
    "resolve",
    "retry_delay",
    "run_command",
    "run_pipeline",
    "summary_lines",
    "template_placeholders",
    "validate_definition",
]
