"""`moved` blocks: a refactoring that moves resources into a module plans no destroy/create.

`terraform plan` needs providers and credentials, neither available to the tests, so the check is static: every
resource address a refactoring took out of a module has one `moved {from, to}` whose `to` is a resource the new
module call really declares (same type, same count/for_each shape), and no `moved` block points anywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.infra import infra_model as tf

HARDENING_TYPES = (
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_versioning",
)

# Resources that left a module for a module call, as they were addressed before the move:
# (caller module, module call) -> addresses that disappeared from the caller.
EXTRACTIONS = {
    ("modules/s3_datalake", "access_logs"): {
        "aws_s3_bucket.access_logs",
        "aws_s3_bucket_ownership_controls.access_logs",
        "aws_s3_bucket_public_access_block.access_logs",
        "aws_s3_bucket_versioning.access_logs",
        "aws_s3_bucket_server_side_encryption_configuration.access_logs",
        "aws_s3_bucket_lifecycle_configuration.access_logs",
        "aws_s3_bucket_policy.access_logs",
    },
    ("modules/state_backend", "access_logs"): {
        "aws_s3_bucket.access_logs",
        "aws_s3_bucket_ownership_controls.access_logs",
        "aws_s3_bucket_public_access_block.access_logs",
        "aws_s3_bucket_versioning.access_logs",
        "aws_s3_bucket_server_side_encryption_configuration.access_logs",
        "aws_s3_bucket_lifecycle_configuration.access_logs",
        "aws_s3_bucket_policy.access_logs",
    },
    # The per-bucket hardening (one module call per bucket; s3_datalake's call has the buckets' for_each keys).
    ("modules/log_bucket", "hardening"): {f"{type_}.this" for type_ in HARDENING_TYPES},
    ("modules/state_backend", "hardening"): {f"{type_}.this" for type_ in HARDENING_TYPES},
    ("modules/s3_datalake", "hardening"): {
        f'{type_}.this["{bucket}"]' for type_ in HARDENING_TYPES for bucket in ("lake", "artifacts")
    },
}

# A resource address with an optional instance key: type.name or type.name[key], inside optional module calls.
ADDRESS = re.compile(
    r"^(?P<modules>(?:module\.\w+(?:\[[^\]]+\])?\.)*)(?P<type>[a-z0-9_]+)\.(?P<name>\w+)(?P<key>\[[^\]]+\])?$"
)


@dataclass(frozen=True)
class Moved:
    module: str
    source: str  # as written, e.g. aws_s3_bucket.access_logs
    target: str  # e.g. module.access_logs.aws_s3_bucket.this


def moved_blocks() -> list[Moved]:
    found = []
    for path in tf.tf_files():
        module = path.parent.relative_to(tf.TERRAFORM_ROOT).as_posix()
        for block in tf.parsed(path).get("moved", []):
            found.append(Moved(module, strip(block["from"]), strip(block["to"])))
    return found


def strip(reference: object) -> str:
    text = str(reference)
    return text[2:-1] if tf.is_expression(text) else text


def declared_resources(module: str) -> dict[str, tf.Block]:
    return {f"{b.type}.{b.name}": b for b in tf.resources() if b.module == module}


def module_call_source(module: str, call: str) -> str | None:
    """The directory (relative to infra/terraform) of a local module call, or None when there is no such call."""
    for block in tf.blocks():
        if block.kind == "module" and block.module == module and block.name == call:
            source = tf.literal(block.body.get("source"))
            assert source and source.startswith("../"), f"{module}: module {call} must have a local source"
            return (tf.TERRAFORM_ROOT / module / source).resolve().relative_to(tf.TERRAFORM_ROOT).as_posix()
    return None


def resolve_target(module: str, address: str) -> tf.Block | None:
    """The resource block a (possibly nested) module address names, following local module sources and, where the
    address has moved again inside that module, the moved block there (Terraform chains the two moves)."""
    match = ADDRESS.match(address)
    assert match, f"{module}: not a resource address: {address}"
    current = module
    for call in re.findall(r"module\.(\w+)", match["modules"]):
        current = module_call_source(current, call)
        if current is None:
            return None
    local = f"{match['type']}.{match['name']}"
    if local in declared_resources(current):
        return declared_resources(current)[local]
    onward = [m.target for m in moved_blocks() if m.module == current and m.source == local + (match["key"] or "")]
    return resolve_target(current, onward[0]) if onward else None


def is_multi_instance(block: tf.Block) -> bool:
    return "count" in block.body or "for_each" in block.body


def test_every_moved_block_goes_from_a_gone_address_to_a_declared_resource_of_the_same_type():
    problems = []
    for moved in moved_blocks():
        source, target = ADDRESS.match(moved.source), ADDRESS.match(moved.target)
        if not source or not target:
            problems.append(f"{moved}: from and to must be resource addresses")
            continue
        if source["modules"] == "" and f"{source['type']}.{source['name']}" in declared_resources(moved.module):
            problems.append(f"{moved.module}: {moved.source} is still declared, so nothing moves")
        if source["type"] != target["type"]:
            problems.append(f"{moved}: a moved block cannot change the resource type")
        resolved = resolve_target(moved.module, moved.target)
        if resolved is None:
            problems.append(f"{moved.module}: {moved.target} is not declared where it points")
        elif is_multi_instance(resolved) != bool(target["key"]):
            problems.append(f"{moved}: instance key does not match the count/for_each of {resolved.address}")
    assert not problems, "\n".join(problems)


def test_moved_blocks_are_one_to_one():
    sources = [(m.module, m.source) for m in moved_blocks()]
    targets = [(m.module, m.target) for m in moved_blocks()]
    assert len(sources) == len(set(sources)), "an address moved twice"
    assert len(targets) == len(set(targets)), "two addresses moved onto one"


@pytest.mark.parametrize("extraction", sorted(EXTRACTIONS), ids=lambda e: f"{e[0]}:{e[1]}")
def test_every_address_an_extraction_removed_has_a_moved_block(extraction):
    module, call = extraction
    target_module = module_call_source(module, call)
    assert target_module, f"{module} no longer calls module {call}"
    moves = {m.source: m.target for m in moved_blocks() if m.module == module}
    gone = EXTRACTIONS[extraction]
    still_declared = gone & set(declared_resources(module))
    assert not still_declared, f"{module} still declares {sorted(still_declared)}"
    missing = sorted(address for address in gone if address not in moves)
    assert not missing, f"{module}: no moved block for {missing} (the plan would destroy and recreate them)"
    into_call = re.compile(rf"^module\.{call}(\[[^\]]+\])?\.")
    wrong = sorted(f"{address} -> {moves[address]}" for address in gone if not into_call.match(moves[address]))
    assert not wrong, f"{module}: moved somewhere other than module.{call}: {wrong}"


@pytest.mark.parametrize("extraction", sorted(EXTRACTIONS), ids=lambda e: f"{e[0]}:{e[1]}")
def test_every_resource_of_the_extracted_module_is_a_moved_target(extraction):
    """The module holds only what moved: a resource without a moved block would be created new by the plan."""
    module, call = extraction
    target_module = module_call_source(module, call)
    targets = {m.target for m in moved_blocks() if m.module == module}
    # One instance of the call per key the moved addresses had (s3_datalake: one per bucket), else one unkeyed call.
    calls = sorted({f"module.{call}{ADDRESS.match(a)['key'] or ''}" for a in EXTRACTIONS[extraction]})
    created = sorted(
        f"{instance}.{address}"
        for instance in calls
        for address in declared_resources(target_module)
        if f"{instance}.{address}" not in targets
    )
    assert not created, f"{target_module} resources no moved block of {module} points to: {created}"
