"""Match rates: served vs the DuckDB reference (a), served vs gold (b), and the last-batch online features.

Equality is exact for integers and decimals; doubles match when both are null or within 1e-12 relative
(the exact decimal sum converted to double may differ by an ulp between engines; gold's own DuckDB test
uses the same tolerance), except `amount_zscore_30d`, compared BIT FOR BIT: its reference (reference.py)
reproduces the documented double operations (var = double(Σ amount²)/n − mean², V2_DESIGN.md) exactly, as
Spark's and the request-time halves do, because that formula loses precision when the earlier amounts are nearly
equal (earlier 999.99 and 1000.00, current 30.00: 1.5e-6 relative off the exact value) and no fixed tolerance
against exact arithmetic both passes such data and catches a real error. The share that is bit-for-bit equal is
reported for every double.
"""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal

from spark_jobs.feature_registry import DOUBLE, FEATURES, INTEGER, Feature

DOUBLE_REL_TOL = 1e-12
RELATIVE_TOLERANCE = {"amount_zscore_30d": 0.0}  # bit for bit (see above)


def same_value(dtype: str, mine, theirs, *, rel_tol: float = DOUBLE_REL_TOL) -> bool:
    if mine is None or theirs is None:
        return mine is None and theirs is None
    if dtype == INTEGER:
        return int(mine) == int(theirs)
    if dtype == DOUBLE or isinstance(mine, float) or isinstance(theirs, float):
        if rel_tol == 0.0:
            return float(mine) == float(theirs)
        return math.isclose(float(mine), float(theirs), rel_tol=rel_tol)
    return Decimal(mine) == Decimal(theirs)


def bit_exact(mine, theirs) -> bool:
    return (mine is None and theirs is None) or (mine is not None and theirs is not None and mine == theirs)


class FeatureTally:
    """Per feature: how many compared, how many matched (and for doubles, how many bit-exact)."""

    def __init__(self, features: tuple[Feature, ...] = FEATURES) -> None:
        self.features = features
        self.compared = 0
        self.rows_matched = 0  # events whose every feature matched
        self.matched: Counter[str] = Counter()
        self.exact: Counter[str] = Counter()
        self.examples: list[dict] = []

    def add(self, key: str, mine: dict | None, theirs: dict | None) -> bool:
        """Compare one event's features (None: the whole row is missing, nothing matches). True if all match."""
        self.compared += 1
        all_match = True
        for item in self.features:
            a = None if mine is None else mine.get(item.name)
            b = None if theirs is None else theirs.get(item.name)
            tolerance = RELATIVE_TOLERANCE.get(item.name, DOUBLE_REL_TOL)
            if mine is not None and theirs is not None and same_value(item.dtype, a, b, rel_tol=tolerance):
                self.matched[item.name] += 1
                self.exact[item.name] += bit_exact(a, b)
            else:
                all_match = False
                if len(self.examples) < 5:
                    self.examples.append({"event": key, "feature": item.name, "got": str(a), "expected": str(b)})
        self.rows_matched += all_match
        return all_match

    def summary(self) -> dict:
        rates = {}
        for item in self.features:
            rate = self.matched[item.name] / self.compared if self.compared else None
            entry = {"matched": self.matched[item.name], "rate": rate}
            if item.dtype == DOUBLE:
                entry["bit_exact"] = self.exact[item.name]
            rates[item.name] = entry
        all_rates = [entry["rate"] for entry in rates.values() if entry["rate"] is not None]
        return {
            "events": self.compared,
            "events_all_features_match": self.rows_matched,
            "min_rate": min(all_rates) if all_rates else None,
            "features": rates,
            "mismatch_examples": self.examples,
        }
