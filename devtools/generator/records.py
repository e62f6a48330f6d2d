"""Events as bronze JSON text, and the invalid variants of a record, one per quarantine reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from devtools.generator.config import (
    CURRENCY_DECIMALS,
    POS_MODES,
    REQUIRED_FIELDS,
    TS_DECIMAL_WEIGHTS,
    TS_DECIMALS,
    GeneratorConfig,
)
from devtools.generator.events import Events
from devtools.generator.world import World, decimal_texts, stage_rng


# --------------------------------------------------------------------------------------------- serialization
@dataclass
class Originals:
    """The N valid events, in event-time order, with their exact field texts."""

    event_ids: list[str]
    card: np.ndarray
    merchant: np.ndarray
    ts_us: np.ndarray  # exact: truncated to the printed precision
    ts_text: list[str]
    amount_text: list[str]
    amount_usd: np.ndarray
    currency: list[str]
    country: list[str]
    pos: list[str]
    card_number: list[str | None]
    fraud: np.ndarray
    burst: np.ndarray


def finalize_events(cfg: GeneratorConfig, world: World, events: Events) -> Originals:
    rng = stage_rng(cfg.seed, 4)
    n = len(events.ts_us)
    order = np.lexsort((rng.random(n), events.ts_us))
    ev = Events(**{f.name: getattr(events, f.name)[order] for f in fields(Events)})

    places = rng.choice(TS_DECIMALS, size=n, p=TS_DECIMAL_WEIGHTS)
    step = 10 ** (6 - places)
    ts_us = ev.ts_us - np.mod(ev.ts_us, step)
    ts_text = decimal_texts(ts_us // step, places)

    country_index = world.merchant_country[ev.merchant]
    currency_codes = np.array([c.currency for c in world.countries])[country_index]
    rates = np.array([world.currencies[c.currency] for c in world.countries])[country_index]
    minor = np.array([CURRENCY_DECIMALS.get(c.currency, 2) for c in world.countries])[country_index]
    style = rng.random(n)
    amount_places = np.where(minor == 0, 0, np.where(style < 0.05, 0, np.where(style < 0.97, 2, 3 + (style > 0.99))))
    local = np.maximum(ev.amount_usd, 0.5) / rates
    units = np.maximum(np.rint(local * 10.0**amount_places), 1).astype(np.int64)
    whole = (amount_places == 0) & (minor > 0)  # round amounts, e.g. a 20.00 top-up written as 20
    units = np.where(whole, np.maximum(np.rint(local), 1), units).astype(np.int64)
    amount_text = decimal_texts(units, amount_places)
    amount_usd = units / 10.0**amount_places * rates

    with_number = rng.random(n) < cfg.card_number_rate
    card_number = [
        world.card_numbers[c] if w else None for c, w in zip(ev.card.tolist(), with_number.tolist(), strict=True)
    ]
    country_codes = np.array([c.code for c in world.countries])[country_index]
    return Originals(
        event_ids=[],  # assigned once every id in the run is drawn
        card=ev.card,
        merchant=ev.merchant,
        ts_us=ts_us,
        ts_text=ts_text,
        amount_text=amount_text,
        amount_usd=amount_usd,
        currency=currency_codes.tolist(),
        country=country_codes.tolist(),
        pos=np.array(POS_MODES)[ev.pos].tolist(),
        card_number=card_number,
        fraud=ev.fraud,
        burst=ev.burst,
    )


Items = list[tuple[str, str]]  # (key, JSON value text) in output order


def serialize_items(items: Items, item_sep: str = ", ", key_sep: str = ": ") -> str:
    return "{" + item_sep.join(f'"{k}"{key_sep}{v}' for k, v in items) + "}"


def original_lines(orig: Originals, world: World) -> list[str]:
    card_ids = world.card_ids
    merchant_ids = world.merchant_ids
    lines = []
    for eid, card, ts, merchant, amount, currency, country, pos, number in zip(
        orig.event_ids,
        orig.card.tolist(),
        orig.ts_text,
        orig.merchant.tolist(),
        orig.amount_text,
        orig.currency,
        orig.country,
        orig.pos,
        orig.card_number,
        strict=True,
    ):
        tail = f', "card_number": "{number}"}}' if number else "}"
        lines.append(
            f'{{"event_id": "{eid}", "card_id": "{card_ids[card]}", "ts": {ts}, '
            f'"merchant_id": "{merchant_ids[merchant]}", "amount": {amount}, "currency": "{currency}", '
            f'"country": "{country}", "pos_mode": "{pos}"{tail}'
        )
    return lines


def record_items(orig: Originals, world: World, i: int, event_id: str | None = None) -> Items:
    items = [
        ("event_id", f'"{event_id or orig.event_ids[i]}"'),
        ("card_id", f'"{world.card_ids[orig.card[i]]}"'),
        ("ts", orig.ts_text[i]),
        ("merchant_id", f'"{world.merchant_ids[orig.merchant[i]]}"'),
        ("amount", orig.amount_text[i]),
        ("currency", f'"{orig.currency[i]}"'),
        ("country", f'"{orig.country[i]}"'),
        ("pos_mode", f'"{orig.pos[i]}"'),
    ]
    if orig.card_number[i]:
        items.append(("card_number", f'"{orig.card_number[i]}"'))
    return items


def with_field(items: Items, key: str, value: str) -> Items:
    return [(k, value if k == key else v) for k, v in items]


def without_field(items: Items, key: str) -> Items:
    return [(k, v) for k, v in items if k != key]


def _with_card_number(items: Items, number: str) -> Items:
    return [*without_field(items, "card_number"), ("card_number", number)]


# --------------------------------------------------------------------------------------------- bad records
# Each variant: (name, field named in the detail or None, function(items, rng, card_number) -> line text).
# Every variant breaks exactly one rule of a record that is otherwise valid, so its reason is certain.
BadVariant = tuple[str, str | None, Callable[[Items, np.random.Generator, str], str]]


def _truncated(items: Items, rng: np.random.Generator, _: str) -> str:
    text = serialize_items(items)
    return text[: int(rng.integers(2, len(text) - 1))]


def _missing(key: str, how: str) -> Callable[[Items, np.random.Generator, str], str]:
    def build(items: Items, _rng: np.random.Generator, _n: str) -> str:
        if how == "absent":
            return serialize_items(without_field(items, key))
        return serialize_items(with_field(items, key, "null" if how == "null" else '""'))

    return build


def _set(key: str, value: str | Callable[[Items], str]) -> Callable[[Items, np.random.Generator, str], str]:
    def build(items: Items, _rng: np.random.Generator, _n: str) -> str:
        text = value(items) if callable(value) else value
        if key == "card_number":
            return serialize_items(_with_card_number(items, text))
        return serialize_items(with_field(items, key, text))

    return build


def _value(items: Items, key: str) -> str:
    return dict(items)[key]


def _ts_seconds(items: Items) -> int:
    return int(_value(items, "ts").split(".")[0])


def _grouped(number: str, separator: str) -> str:
    """`number` in groups of 4 digits joined by `separator`."""
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


def _bad_card_number(kind: str) -> Callable[[Items, np.random.Generator, str], str]:
    def build(items: Items, _rng: np.random.Generator, number: str) -> str:
        if kind == "luhn":
            text = number[:-1] + str((int(number[-1]) + 1 + _rng.integers(0, 9)) % 10)
        elif kind == "short":
            text = number[:8]
        elif kind == "letters":
            text = number[:6] + "ABCD" + number[10:]
        elif kind == "dashes":
            text = "-".join(number[i : i + 4] for i in range(0, 16, 4))
        elif kind == "long":
            text = number + "0000"
        else:
            text = ""
        return serialize_items(_with_card_number(items, f'"{text}"'))

    return build


LINE_TOO_LONG_BYTES = 1024 * 1024 + 1  # one byte over spark_jobs.bronze_contract.MAX_LINE_BYTES, the job's default

BAD_VARIANTS: dict[str, tuple[BadVariant, ...]] = {
    "malformed_json": (
        ("truncated", None, _truncated),
        ("array", None, lambda items, _r, _n: "[" + serialize_items(items) + "]"),
        ("empty_array", None, lambda _i, _r, _n: "[]"),
        ("scalar_number", None, lambda _i, _r, _n: "42"),
        ("scalar_string", None, lambda _i, _r, _n: '"card_authorization"'),
        ("scalar_true", None, lambda _i, _r, _n: "true"),
        ("null", None, lambda _i, _r, _n: "null"),
        ("duplicate_key", None, lambda items, _r, _n: serialize_items([*items, ("amount", "1.0")])),
        ("duplicate_key_same_value", None, lambda items, _r, _n: serialize_items([*items, items[0]])),
        (
            "invalid_utf8",
            None,
            lambda items, _r, _n: serialize_items(with_field(items, "merchant_id", '"caf\udce9-\udcff\udcfe"')),
        ),
        ("two_objects", None, lambda items, _r, _n: serialize_items(items) + serialize_items(items)),
        ("trailing_garbage", None, lambda items, _r, _n: serialize_items(items) + " x"),
        ("single_quotes", None, lambda items, _r, _n: serialize_items(items).replace('"', "'")),
        ("trailing_comma", None, lambda items, _r, _n: serialize_items(items)[:-1] + ", }"),
    ),
    "missing_field": (
        ("empty_object", "event_id", lambda _i, _r, _n: "{}"),
        *(
            (f"{key}_{how}", key, _missing(key, how))
            for key in REQUIRED_FIELDS
            for how in ("absent", "null", "empty")
            if not (how == "empty" and key in {"ts", "amount"})
        ),
    ),
    "bad_type": (
        ("event_id_number", "event_id", _set("event_id", "918273645")),
        ("card_id_number", "card_id", _set("card_id", "123456")),
        ("ts_string", "ts", _set("ts", lambda items: f'"{_value(items, "ts")}"')),
        ("ts_bool", "ts", _set("ts", "true")),
        ("merchant_id_bool", "merchant_id", _set("merchant_id", "true")),
        ("amount_string", "amount", _set("amount", lambda items: f'"{_value(items, "amount")}"')),
        ("amount_bool", "amount", _set("amount", "false")),
        ("amount_object", "amount", _set("amount", lambda items: f'{{"value": {_value(items, "amount")}}}')),
        ("currency_number", "currency", _set("currency", "840")),
        ("country_bool", "country", _set("country", "true")),
        ("pos_mode_array", "pos_mode", _set("pos_mode", '["chip"]')),
        (
            "card_number_number",
            "card_number",
            lambda items, _r, number: serialize_items(_with_card_number(items, number)),
        ),
    ),
    # Strings over FIELD_MAX_CHARS of spark_jobs/bronze_contract.py (ids 128, codes 16, card_number 64 characters).
    "field_too_long": (
        ("card_id_200", "card_id", _set("card_id", lambda items: _value(items, "card_id")[:-1].ljust(200, "x") + '"')),
        (
            "event_id_129",
            "event_id",
            _set("event_id", lambda items: '"' + (_value(items, "event_id")[1:-1] * 129)[:129] + '"'),
        ),
        ("merchant_id_5000", "merchant_id", _set("merchant_id", '"' + "m" * 5000 + '"')),
        ("currency_18", "currency", _set("currency", lambda items: '"' + _value(items, "currency")[1:-1] * 6 + '"')),
        ("pos_mode_17", "pos_mode", _set("pos_mode", '"contactless-swipe"')),
        (
            "card_number_80",
            "card_number",
            lambda items, _r, number: serialize_items(_with_card_number(items, f'"{(number * 5)[:80]}"')),
        ),
    ),
    # A real card number (the event's card) in a string other than card_number: a producer leaking it.
    "card_number_in_field": (
        (
            "card_id_is_the_number",
            "card_id",
            lambda items, _r, number: serialize_items(with_field(items, "card_id", f'"{number}"')),
        ),
        (
            "merchant_id_spaced",
            "merchant_id",
            lambda items, _r, number: serialize_items(with_field(items, "merchant_id", f'"{_grouped(number, " ")}"')),
        ),
        (
            "event_id_dashed",
            "event_id",
            lambda items, _r, number: serialize_items(with_field(items, "event_id", f'"evt {_grouped(number, "-")}"')),
        ),
        (
            "free_text_note",
            "note",
            lambda items, _r, number: serialize_items([*items, ("note", f'"paid with card {number}, thanks"')]),
        ),
        (
            "nested_extra",
            "payment",
            lambda items, _r, number: serialize_items(
                [*items, ("payment", f'{{"method": "card", "pan": ["{number}"]}}')]
            ),
        ),
        (
            "escaped_digits",
            "card_id",
            lambda items, _r, number: serialize_items(
                with_field(items, "card_id", '"' + "".join(f"\\u{ord(c):04x}" for c in number[:4]) + number[4:] + '"')
            ),
        ),
        ("as_a_key", None, lambda items, _r, number: serialize_items([*items, (number, "true")])),
    ),
    "out_of_range": (
        ("amount_5_decimals", "amount", _set("amount", lambda items: _value(items, "amount").split(".")[0] + ".12345")),
        ("amount_1e14", "amount", _set("amount", "100000000000000")),
        ("amount_above_1e14", "amount", _set("amount", "123456789012345.5")),
        ("ts_7_decimals", "ts", _set("ts", lambda items: f"{_ts_seconds(items)}.1234567")),
        ("ts_before_2000", "ts", _set("ts", "946684799.5")),
        ("ts_zero", "ts", _set("ts", "0")),
        ("ts_2100", "ts", _set("ts", "4102444800")),
        ("ts_negative", "ts", _set("ts", lambda items: f"-{_ts_seconds(items)}")),
    ),
    # ts after the record's arrival plus the 15-minute allowance (the line still arrives at the event's own
    # time, in that hour's folder): a producer clock ahead by hours or days, or a year in the far future.
    "future_timestamp": (
        ("ts_hours_ahead", "ts", _set("ts", lambda items: str(_ts_seconds(items) + 3 * 3600))),
        ("ts_days_ahead", "ts", _set("ts", lambda items: f"{_ts_seconds(items) + 40 * 86400}.5")),
        ("ts_2099", "ts", _set("ts", "4070908800")),
    ),
    "non_positive_amount": (
        ("zero", "amount", _set("amount", "0")),
        ("zero_decimals", "amount", _set("amount", "0.00")),
        ("negative", "amount", _set("amount", lambda items: "-" + _value(items, "amount"))),
        ("negative_cent", "amount", _set("amount", "-0.01")),
    ),
    "unknown_currency": (
        ("lower_case", "currency", _set("currency", lambda items: _value(items, "currency").lower())),
        ("xxx", "currency", _set("currency", '"XXX"')),
        ("word", "currency", _set("currency", '"EURO"')),
        ("symbol", "currency", _set("currency", '"US$"')),
        ("padded", "currency", _set("currency", lambda items: '" ' + _value(items, "currency")[1:])),
    ),
    "bad_enum": (
        ("country_lower", "country", _set("country", lambda items: _value(items, "country").lower())),
        ("country_alpha3", "country", _set("country", '"USA"')),
        ("country_one_letter", "country", _set("country", '"U"')),
        ("country_digit", "country", _set("country", '"D3"')),
        ("country_non_ascii", "country", _set("country", '"\u00dcS"')),
        ("pos_mode_tap", "pos_mode", _set("pos_mode", '"tap"')),
        ("pos_mode_upper", "pos_mode", _set("pos_mode", '"CHIP"')),
        ("pos_mode_online", "pos_mode", _set("pos_mode", '"online"')),
        ("pos_mode_padded", "pos_mode", _set("pos_mode", '"chip "')),
    ),
    "invalid_card_number": (
        ("luhn_invalid", "card_number", _bad_card_number("luhn")),
        ("too_short", "card_number", _bad_card_number("short")),
        ("letters", "card_number", _bad_card_number("letters")),
        ("dashes", "card_number", _bad_card_number("dashes")),
        ("too_long", "card_number", _bad_card_number("long")),
        ("empty", "card_number", _bad_card_number("empty")),
    ),
    # A line over the contract's 1 MiB line cap (more than a Kinesis record holds): quarantined unparsed. Cheap in
    # gzip (one repeated character), and built only when drawn.
    "line_too_long": (
        ("merchant_id_1mib", None, _set("merchant_id", lambda _items: '"' + "m" * LINE_TOO_LONG_BYTES + '"')),
    ),
}


def class_counts(total: int, classes: Sequence[str], rng: np.random.Generator) -> list[str]:
    """`total` labels: every class at least once when total allows, the rest spread evenly, shuffled."""
    labels = [classes[i % len(classes)] for i in range(total)]
    return [labels[i] for i in rng.permutation(total).tolist()]
