"""The valid events: legitimate spending on a daily cycle, and fraud bursts (compromised cards and merchants)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from devtools.generator.config import (
    CLONED_CARD_POS_WEIGHTS,
    ECOMMERCE,
    HOURLY_ACTIVITY,
    STORE_POS_MODES,
    STORE_POS_WEIGHTS,
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
    US_PER_SECOND,
    GeneratorConfig,
)
from devtools.generator.world import World, pick_merchants, stage_rng


# --------------------------------------------------------------------------------------------- events
@dataclass
class Events:
    card: np.ndarray
    merchant: np.ndarray
    ts_us: np.ndarray
    amount_usd: np.ndarray
    pos: np.ndarray
    fraud: np.ndarray  # 0 legit, 1 compromised card, 2 compromised merchant
    burst: np.ndarray  # fraud burst number, -1 for legit


def simulate_legit_events(
    cfg: GeneratorConfig, world: World, count: int, start_us: int, end_us: int, *, stage: int = 2
) -> Events:
    rng = stage_rng(cfg.seed, stage)
    n_countries = len(world.countries)
    activity = world.card_activity / world.card_activity.sum()
    card = rng.choice(cfg.cards, size=count, p=activity)
    day = rng.integers(0, cfg.days, count)
    hour = rng.choice(24, size=count, p=HOURLY_ACTIVITY / HOURLY_ACTIVITY.sum())
    offsets = np.array([c.utc_offset_hours for c in world.countries])[world.card_home[card]]
    local_us = day * US_PER_DAY + hour * US_PER_HOUR + rng.integers(0, US_PER_HOUR, count)
    window_us = end_us - start_us
    ts_us = start_us + np.mod(local_us - offsets * US_PER_HOUR, window_us)

    online = rng.random(count) < 0.22
    country = world.card_home[card].copy()
    travelling = (ts_us >= world.trip_start_us[card]) & (ts_us < world.trip_end_us[card])
    country = np.where(travelling & ~online, world.trip_country[card], country)
    foreign_online = online & (rng.random(count) < 0.12)
    country = np.where(foreign_online, rng.integers(0, n_countries, count), country)
    merchant = pick_merchants(rng, world, country, online, popular=True)

    amount_usd = world.card_scale_usd[card] * world.merchant_factor[merchant] * np.exp(rng.normal(0.0, 0.75, count))
    pos = np.where(online, ECOMMERCE, rng.choice(STORE_POS_MODES, size=count, p=STORE_POS_WEIGHTS))
    return Events(
        card=card,
        merchant=merchant,
        ts_us=ts_us,
        amount_usd=amount_usd,
        pos=pos,
        fraud=np.zeros(count, dtype=np.int8),
        burst=np.full(count, -1, dtype=np.int64),
    )


def simulate_fraud_events(
    cfg: GeneratorConfig, world: World, legit: Events, count: int, *, start_us: int, end_us: int
) -> tuple[Events, dict[str, Any]]:
    """Bursts of fraud, `count` events in all: compromised merchants first (their share), then compromised cards."""
    rng = stage_rng(cfg.seed, 3)
    n_countries = len(world.countries)
    n_merchants = len(world.merchant_ids)
    pairs = np.unique(legit.card * n_merchants + legit.merchant)  # sorted by card, then merchant

    def used_by(card: int) -> set[int]:
        """Merchants where the card has legitimate transactions."""
        first, last = np.searchsorted(pairs, [card * n_merchants, (card + 1) * n_merchants])
        return set((pairs[first:last] - card * n_merchants).tolist())

    compromised_cards: set[int] = set()
    rows: dict[str, list] = {k: [] for k in ("card", "merchant", "ts_us", "amount_usd", "pos", "fraud", "burst")}
    compromised_merchants: list[dict[str, Any]] = []
    burst_number = 0

    def add_burst(card: int, first_us: int, size: int, scenario: int) -> int:
        nonlocal burst_number
        gaps = rng.exponential(6 * US_PER_MINUTE, size).astype(np.int64) + US_PER_SECOND
        times = first_us + np.cumsum(gaps) - gaps[0]
        times = times[times < end_us]
        if len(times) == 0:
            return 0
        home = int(world.card_home[card])
        card_not_present = rng.random() < 0.6 or n_countries == 1
        if card_not_present:  # card details used online, often at foreign shops
            abroad = rng.random(len(times)) < 0.6
            country = np.where(abroad, (home + rng.integers(1, max(n_countries, 2), len(times))) % n_countries, home)
            online = np.ones(len(times), dtype=bool)
        else:  # a cloned card used in shops of one foreign country
            country = np.full(len(times), (home + rng.integers(1, n_countries)) % n_countries)
            online = np.zeros(len(times), dtype=bool)
        # fraudsters shop where the card has never been used (any such shop of the kind, if the country has none)
        used = used_by(card)
        merchant = np.empty(len(times), dtype=np.int64)
        for index, (country_index, kind) in enumerate(zip(country.tolist(), online.tolist(), strict=True)):
            fresh = [m for m in world.groups[(country_index, kind)].tolist() if m not in used]
            if not fresh:
                fresh = [m for m in np.flatnonzero(world.merchant_online == kind).tolist() if m not in used]
            merchant[index] = fresh[int(rng.integers(0, len(fresh)))] if fresh else int(rng.integers(0, n_merchants))
        amount = (
            world.card_scale_usd[card] * world.merchant_factor[merchant] * np.exp(rng.normal(0.3, 0.55, len(times)))
        )
        pos = (
            np.full(len(times), ECOMMERCE)
            if card_not_present
            else rng.choice(STORE_POS_MODES, size=len(times), p=CLONED_CARD_POS_WEIGHTS)
        )
        rows["card"] += [card] * len(times)
        rows["merchant"] += merchant.tolist()
        rows["ts_us"] += times.tolist()
        rows["amount_usd"] += amount.tolist()
        rows["pos"] += pos.tolist()
        rows["fraud"] += [scenario] * len(times)
        rows["burst"] += [burst_number] * len(times)
        burst_number += 1
        compromised_cards.add(card)
        return len(times)

    def burst_size(remaining: int) -> int:
        return int(min(remaining, rng.integers(3, 10)))

    merchant_target = round(count * cfg.merchant_fraud_share)
    produced = 0
    # (b) compromised merchants: popular stores, a compromise window, victims defrauded 1-10 days after their visit.
    store_members = np.flatnonzero(~world.merchant_online)
    if merchant_target > 0 and len(store_members):
        weights = world.merchant_popularity[store_members] / world.merchant_popularity[store_members].sum()
        candidates = rng.choice(store_members, size=min(len(store_members), 60), replace=False, p=weights)
        latest_start = start_us + max(cfg.days - 2, 0) * US_PER_DAY // 2  # compromises in the first half
        for merchant in candidates.tolist():
            if produced >= merchant_target:
                break
            window_start = int(rng.integers(start_us, latest_start + 1))
            window_end = window_start + int(rng.integers(1, 4)) * US_PER_DAY
            visits = np.flatnonzero(
                (legit.merchant == merchant) & (legit.ts_us >= window_start) & (legit.ts_us < window_end)
            )
            victims_this_merchant = 0
            first_visit: dict[int, int] = {}
            for row in visits[np.argsort(legit.ts_us[visits], kind="stable")].tolist():
                first_visit.setdefault(int(legit.card[row]), int(legit.ts_us[row]))
            for card, visit_us in first_visit.items():
                if produced >= merchant_target:
                    break
                if card in compromised_cards or victims_this_merchant >= 15 or rng.random() > 0.5:
                    continue
                latest = min(visit_us + 10 * US_PER_DAY, end_us - US_PER_HOUR)
                earliest = visit_us + US_PER_DAY
                if latest <= earliest:
                    continue
                made = add_burst(card, int(rng.integers(earliest, latest)), burst_size(merchant_target - produced), 2)
                produced += made
                victims_this_merchant += made > 0
            if victims_this_merchant:
                compromised_merchants.append(
                    {
                        "merchant_id": world.merchant_ids[merchant],
                        "window_start_us": window_start,
                        "window_end_us": window_end,
                        "victim_cards": victims_this_merchant,
                    }
                )
    # (a) compromised cards: the rest of the target.
    attempts = 0
    first_allowed = start_us + (US_PER_DAY if cfg.days > 1 else 0)
    while produced < count and attempts < 100 * count + 100:
        attempts += 1
        card = int(rng.integers(0, cfg.cards))
        if card in compromised_cards and len(compromised_cards) < cfg.cards:
            continue
        first_us = int(rng.integers(first_allowed, max(first_allowed + 1, end_us - US_PER_HOUR)))
        produced += add_burst(card, first_us, burst_size(count - produced), 1)
    events = Events(
        card=np.array(rows["card"], dtype=np.int64),
        merchant=np.array(rows["merchant"], dtype=np.int64),
        ts_us=np.array(rows["ts_us"], dtype=np.int64),
        amount_usd=np.array(rows["amount_usd"], dtype=np.float64),
        pos=np.array(rows["pos"], dtype=np.int64),
        fraud=np.array(rows["fraud"], dtype=np.int8),
        burst=np.array(rows["burst"], dtype=np.int64),
    )
    return events, {"compromised_merchants": compromised_merchants, "bursts": burst_number}


def concat_events(parts: Sequence[Events]) -> Events:
    return Events(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Events)})
