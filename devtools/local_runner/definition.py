"""ASL definitions as Terraform deploys them: the templatefile() placeholders, filled from a local configuration."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from devtools.local_runner.errors import DefinitionError, UnsupportedConstruct
from devtools.repo import REPO_ROOT

STATE_MACHINES_DIR = REPO_ROOT / "state_machines"
MODES = ("stream", "daily")

# Exactly the variables infra/terraform/modules/step_functions passes to templatefile().
PLACEHOLDERS = (
    "aws_region",
    "emr_application_id",
    "emr_job_role_arn",
    "lake_root",
    "code_uri",
    "lease_table_name",
    "alerts_topic_arn",
    "feature_store_backend",
    "online_state_table",
    "bronze_lookback_hours",
    "firehose_buffering_seconds",
    "stream_retention_hours",
    "event_id_index_table",
    "delta_log_table_name",
    "glue_database",
    "card_token_secret_id",
    "log_group_name",
)
LOCAL_ACCOUNT = "000000000000"
LEASE_TABLE_KEY = "lease_id"

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def template_placeholders(text: str) -> set[str]:
    """Every `${name}` of a template (`$${` is templatefile's escape for a literal `${`)."""
    return {match.group(1) for part in text.split("$${") for match in _PLACEHOLDER.finditer(part)}


def fill_template(text: str, variables: Mapping[str, str]) -> str:
    """What templatefile() does to an ASL file, with each value JSON-escaped so the result stays JSON."""
    if "%{" in text:
        raise UnsupportedConstruct("template directive %{...} (only ${name} placeholders are supported)")

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise DefinitionError(f"placeholder ${{{name}}} has no value in the local configuration")
        return json.dumps(str(variables[name]))[1:-1]

    return "${".join(_PLACEHOLDER.sub(replace, part) for part in text.split("$${"))


def load_definition(path: Path, variables: Mapping[str, str]) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DefinitionError(f"cannot read the definition {path}: {error.strerror}") from error
    try:
        return json.loads(fill_template(text, variables))
    except json.JSONDecodeError as error:
        raise DefinitionError(f"{path}: not valid JSON after filling the placeholders: {error}") from error
