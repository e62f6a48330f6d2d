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
    for name, entry in b["unaffected"]["features"].items():
        lines.append(
            f"  {name}: {percent(entry['rate'])} / {percent(b['affected']['features'][name]['rate'])} | "
            f"{percent(last['unaffected']['features'][name]['rate'])} / "
            f"{percent(last['affected']['features'][name]['rate'])}"
        )
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
