"""Generate a realistic, deterministic card-authorization lake: bronze in the Firehose layout plus chargebacks.

Bronze follows contract v1 (docs/contracts/bronze_card_authorization.md): gzipped NDJSON under
`<lake-root>/bronze/streaming/card_authorization/ingest_dt=YYYY/MM/DD/HH/<firehose-like name>`, the folder being
the arrival hour in UTC. Chargebacks go to `<lake-root>/bronze/labels/chargebacks/reported_dt=YYYY/MM/DD/` as
NDJSON `{"event_id": ..., "reported_at": <unix seconds>}`. The ground truth (fraud events, the intended
quarantine reason of every bad line, every class count and the arguments) lands in `<lake-root>/_generator/`.

The world: cards with a home country, currency, spending scale and activity level (some travel abroad for a
few days), merchants with a country, an online/store kind, a price level and Zipf-like popularity, and a
daily activity cycle in the card's local time. Fraud follows the Fraud Detection Handbook's simulator:
(a) compromised cards: a burst of transactions within about an hour, abroad and/or online, at merchants the
card never used, amounts in the card's usual-to-moderately-higher range; (b) compromised merchants: cards
that transacted at the merchant during its compromise window are defrauded (with such a burst) days later;
(c) merchant breaches (`--breached-merchants`): a share of a breached merchant's own authorizations over
several days are fraud, visible only through the merchant's earlier chargebacks.
Fraud amounts overlap legitimate ones, so amount alone is a weak signal while rolling per-card features
(counts in 1 h, distinct merchants and countries in 24 h, seconds since the previous transaction) are strong.

Determinism: every random choice comes from numpy generators seeded by `--seed` (one independent stream per
stage, so e.g. changing `--bad-rate` does not move a single legitimate event), gzip headers carry mtime 0,
nothing reads the wall clock, and every output is written in sorted order. Same arguments, same bytes.

Command line: `python scripts/generate_transactions.py --events 100000 --cards 2000 --days 30 --seed 7 --lake-root lake`
Library: `generate_lake(GeneratorConfig(...)) -> GenerationSummary`; `load_manifest`, `load_truth` and
`config_from_manifest` read a generated lake back.

    config     GeneratorConfig, GenerationSummary and the constants (paths, reasons, variants, countries)
    world      cards, merchants, countries and the seeded random streams
    events     legitimate spending and fraud bursts
    records    events as bronze JSON text, and the invalid variants of a record
    dirt       re-deliveries and invalid lines
    writer     generate_lake(): the phases that write bronze, chargebacks and the ground truth
    manifest   reading a generated lake back
"""

from devtools.generator.config import (
    BAD_LINE_TRUTH_NAME,
    BRONZE_PREFIX,
    DEFAULT_FX_RATES,
    FRAUD_TRUTH_NAME,
    GENERATOR_DIR,
    LABEL_REASONS,
    LABEL_TRUTH_NAME,
    LABELS_PREFIX,
    LATE_MIN_HOURS,
    MANIFEST_NAME,
    POS_MODES,
    QUARANTINE_REASONS,
    REDELIVERY_TRUTH_NAME,
    GenerationSummary,
    GeneratorConfig,
)
from devtools.generator.manifest import config_from_manifest, load_manifest, load_truth
from devtools.generator.records import BAD_VARIANTS
from devtools.generator.writer import generate_lake, generate_once

__all__ = [
    "BAD_LINE_TRUTH_NAME",
    "BAD_VARIANTS",
    "BRONZE_PREFIX",
    "DEFAULT_FX_RATES",
    "FRAUD_TRUTH_NAME",
    "GENERATOR_DIR",
    "LABELS_PREFIX",
    "LABEL_REASONS",
    "LABEL_TRUTH_NAME",
    "LATE_MIN_HOURS",
    "MANIFEST_NAME",
    "POS_MODES",
    "QUARANTINE_REASONS",
    "REDELIVERY_TRUTH_NAME",
    "GenerationSummary",
    "GeneratorConfig",
    "config_from_manifest",
    "generate_lake",
    "generate_once",
    "load_manifest",
    "load_truth",
]
