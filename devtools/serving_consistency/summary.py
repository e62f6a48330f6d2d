"""The results as text: a console summary and the Markdown table the docs show."""

from __future__ import annotations


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.2f} %"


def summary_lines(results: dict) -> list[str]:
    a = results["a_served_equals_reference"]
    b = results["b_served_equals_gold"]
    last = results["last_batch_online_vs_gold"]
    lines = [
        f"requests {results['requests']['total']:,}: {results['requests']}",
        f"(a) served == DuckDB reference over the seen state: {a['events_all_features_match']:,} of {a['events']:,}"
        f" events ({'passed' if a['passed'] else 'FAILED'})",
        f"(b) served == gold on unaffected events: {b['unaffected']['events_all_features_match']:,} of "
        f"{b['unaffected']['events']:,} ({'passed' if b['passed_on_unaffected'] else 'FAILED'}); "
        f"affected events: {b['affected']['events']:,}",
        "feature: served==gold unaffected / affected | last-batch==gold unaffected / affected",
    ]
    merchant = results.get("merchant_served_vs_gold")
    for name, entry in b["unaffected"]["features"].items():
        lines.append(
            f"  {name}: {percent(entry['rate'])} / {percent(b['affected']['features'][name]['rate'])} | "
            f"{percent(last['unaffected']['features'][name]['rate'])} / "
            f"{percent(last['affected']['features'][name]['rate'])}"
        )
    if merchant is not None:
        lines += merchant_lines(merchant)
    return lines


def merchant_lines(merchant: dict) -> list[str]:
    """The merchant features served vs gold/merchant_features: flagged stale responses and the mismatches."""
    mismatches = merchant["mismatches"]
    lines = [
        f"merchant features == gold/merchant_features: {merchant['served_equals_gold']:,} of "
        f"{merchant['responses']:,} responses ({'passed' if merchant['passed'] else 'FAILED'}); "
        f"sources {merchant['by_source']}; flagged merchant_snapshot_stale: {merchant['flagged_stale']:,}",
        f"  mismatches explained by a stale snapshot: {mismatches['explained_by_stale_snapshot']:,}; by the day's "
        f"snapshot changing after ingestion (late events, chargebacks): "
        f"{mismatches['explained_by_later_snapshot_change']:,}; unexplained: {mismatches['unexplained']:,}",
    ]
    lines += [f"  {name}: {percent(entry['rate'])}" for name, entry in merchant["features"].items()]
    return lines


def markdown_table(results: dict) -> str:
    """Per feature: served == gold and last-batch == gold, for unaffected and affected events, and (a)."""
    a = results["a_served_equals_reference"]
    b = results["b_served_equals_gold"]
    last = results["last_batch_online_vs_gold"]
    unaffected, affected = b["unaffected"], b["affected"]
    lines = [
        f"| feature | served = reference (a), {a['events']:,} events | served = gold, {unaffected['events']:,} "
        f"unaffected | served = gold, {affected['events']:,} affected | last batch = gold, unaffected | "
        "last batch = gold, affected |",
        "|---|---|---|---|---|---|",
    ]
    for name in unaffected["features"]:
        cells = [
            a["features"][name]["rate"],
            unaffected["features"][name]["rate"],
            affected["features"][name]["rate"],
            last["unaffected"]["features"][name]["rate"],
            last["affected"]["features"][name]["rate"],
        ]
        lines.append(f"| `{name}` | " + " | ".join(percent(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"
