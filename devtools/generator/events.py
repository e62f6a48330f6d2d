"""The valid events: legitimate spending on a daily cycle, fraud bursts (compromised cards and merchants) and
breached merchants' fraud (merchant_breach: some of a breached merchant's own authorizations)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from devtools.generator.config import (
    BREACH_MIN_DAILY_AUTHORIZATIONS,
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
    fraud: np.ndarray  # 0 legit, 1 compromised card, 2 compromised merchant, 3 merchant breach
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
    fraud = _FraudBursts(stage_rng(cfg.seed, 3), world, legit, end_us)
    merchant_target = round(count * cfg.merchant_fraud_share)
    compromised_merchants = _compromised_merchant_bursts(cfg, fraud, legit, merchant_target, start_us, end_us)
    # (a) compromised cards: the rest of the target.
    attempts = 0
    first_allowed = start_us + (US_PER_DAY if cfg.days > 1 else 0)
    while fraud.produced < count and attempts < 100 * count + 100:
        attempts += 1
        card = int(fraud.rng.integers(0, cfg.cards))
        if card in fraud.compromised_cards and len(fraud.compromised_cards) < cfg.cards:
            continue
        first_us = int(fraud.rng.integers(first_allowed, max(first_allowed + 1, end_us - US_PER_HOUR)))
        fraud.add_burst(card, first_us, fraud.burst_size(count - fraud.produced), scenario=1)
    return fraud.events(), {"compromised_merchants": compromised_merchants, "bursts": fraud.bursts}


def _compromised_merchant_bursts(
    cfg: GeneratorConfig, fraud: _FraudBursts, legit: Events, target: int, start_us: int, end_us: int
) -> list[dict[str, Any]]:
    """(b) compromised merchants: popular stores, a compromise window, victims defrauded 1-10 days after their
    visit, until `target` fraud events; returns the compromised merchants with their windows."""
    world, rng = fraud.world, fraud.rng
    compromised_merchants: list[dict[str, Any]] = []
    store_members = np.flatnonzero(~world.merchant_online)
    if target <= 0 or not len(store_members):
        return compromised_merchants
    weights = world.merchant_popularity[store_members] / world.merchant_popularity[store_members].sum()
    candidates = rng.choice(store_members, size=min(len(store_members), 60), replace=False, p=weights)
    latest_start = start_us + max(cfg.days - 2, 0) * US_PER_DAY // 2  # compromises in the first half
    for merchant in candidates.tolist():
        if fraud.produced >= target:
            break
        window_start = int(rng.integers(start_us, latest_start + 1))
        window_end = window_start + int(rng.integers(1, 4)) * US_PER_DAY
        visits = np.flatnonzero(
            (legit.merchant == merchant) & (legit.ts_us >= window_start) & (legit.ts_us < window_end)
        )
        first_visit: dict[int, int] = {}
        for row in visits[np.argsort(legit.ts_us[visits], kind="stable")].tolist():
            first_visit.setdefault(int(legit.card[row]), int(legit.ts_us[row]))
        victims = 0
        for card, visit_us in first_visit.items():
            if fraud.produced >= target:
                break
            if card in fraud.compromised_cards or victims >= 15 or rng.random() > 0.5:
                continue
            latest = min(visit_us + 10 * US_PER_DAY, end_us - US_PER_HOUR)
            earliest = visit_us + US_PER_DAY
            if latest <= earliest:
                continue
            first_us = int(rng.integers(earliest, latest))
            victims += fraud.add_burst(card, first_us, fraud.burst_size(target - fraud.produced), scenario=2) > 0
        if victims:
            compromised_merchants.append(
                {
                    "merchant_id": world.merchant_ids[merchant],
                    "window_start_us": window_start,
                    "window_end_us": window_end,
                    "victim_cards": victims,
                }
            )
    return compromised_merchants


MERCHANT_BREACH = 3  # the fraud code of merchant_breach (SCENARIOS[2])


def simulate_merchant_breaches(
    cfg: GeneratorConfig,
    world: World,
    legit: Events,
    other_fraud: Events,
    fraud_info: dict[str, Any],
    *,
    start_us: int,
    end_us: int,
) -> list[tuple[int, int, int, int, int]]:
    """merchant_breach, in place on `legit`: `cfg.breached_merchants` merchants are breached for `cfg.breach_days`
    days each, and each of their authorizations in the breach window is fraud with probability
    `cfg.breach_fraud_share`. The frauds are the merchant's own legitimate authorizations relabelled (card, time,
    amount and volume stay what the legitimate simulation drew), so only the merchant's chargebacks can reveal
    them. Never a compromised merchant, never a card that is another scenario's victim. Each fraud is its own
    dispute (its own burst number, after the other scenarios' bursts). Returns (merchant, window start, window
    end, authorizations in the window, frauds) per breach, in draw order; its own random stream (stage 13),
    so the other scenarios do not move."""
    if cfg.breached_merchants == 0:
        return []
    rng = stage_rng(cfg.seed, 13)
    n_merchants = len(world.merchant_ids)
    volume = np.bincount(legit.merchant, minlength=n_merchants)
    excluded = np.zeros(n_merchants, dtype=bool)
    index_of = {merchant_id: index for index, merchant_id in enumerate(world.merchant_ids)}
    for compromised in fraud_info["compromised_merchants"]:
        excluded[index_of[compromised["merchant_id"]]] = True
    busy = np.flatnonzero((volume >= max(BREACH_MIN_DAILY_AUTHORIZATIONS * cfg.days, 1)) & ~excluded)
    chosen = rng.choice(busy, size=min(cfg.breached_merchants, len(busy)), replace=False)
    if len(chosen) < cfg.breached_merchants:  # too few busy merchants (a small lake): the busiest others fill up
        taken = set(chosen.tolist())
        others = [m for m in np.argsort(-volume, kind="stable").tolist() if volume[m] and not excluded[m]]
        others = [m for m in others if m not in taken]
        chosen = np.concatenate([chosen, np.array(others[: cfg.breached_merchants - len(chosen)], dtype=np.int64)])
    victims = np.isin(legit.card, np.unique(other_fraud.card))
    next_burst = fraud_info["bursts"]
    breaches = []
    for merchant in chosen.tolist():
        window_start = int(rng.integers(start_us, max(start_us + 1, end_us - US_PER_DAY)))
        window_end = min(window_start + cfg.breach_days * US_PER_DAY, end_us)
        in_window = (legit.merchant == merchant) & (legit.ts_us >= window_start) & (legit.ts_us < window_end)
        rows = np.flatnonzero(in_window & ~victims)
        rows = rows[np.argsort(legit.ts_us[rows], kind="stable")]
        frauds = rows[rng.random(len(rows)) < cfg.breach_fraud_share]
        legit.fraud[frauds] = MERCHANT_BREACH
        legit.burst[frauds] = np.arange(next_burst, next_burst + len(frauds))
        next_burst += len(frauds)
        breaches.append((merchant, window_start, window_end, int(in_window.sum()), len(frauds)))
    fraud_info["bursts"] = next_burst
    return breaches


class _FraudBursts:
    """The fraud events drawn so far, burst by burst, from one random stream (the draw order is the output)."""

    def __init__(self, rng: np.random.Generator, world: World, legit: Events, end_us: int) -> None:
        self.rng, self.world, self.end_us = rng, world, end_us
        self.merchants = len(world.merchant_ids)
        self.card_merchant_pairs = np.unique(legit.card * self.merchants + legit.merchant)  # by card, then merchant
        self.compromised_cards: set[int] = set()
        self.rows: dict[str, list] = {
            k: [] for k in ("card", "merchant", "ts_us", "amount_usd", "pos", "fraud", "burst")
        }
        self.bursts = 0
        self.produced = 0

    def used_by(self, card: int) -> set[int]:
        """Merchants where the card has legitimate transactions."""
        pairs = self.card_merchant_pairs
        first, last = np.searchsorted(pairs, [card * self.merchants, (card + 1) * self.merchants])
        return set((pairs[first:last] - card * self.merchants).tolist())

    def burst_size(self, remaining: int) -> int:
        return int(min(remaining, self.rng.integers(3, 10)))

    def add_burst(self, card: int, first_us: int, size: int, *, scenario: int) -> int:
        """Up to `size` fraud events of `card` from `first_us`, minutes apart; returns how many fit the window."""
        rng, world = self.rng, self.world
        gaps = rng.exponential(6 * US_PER_MINUTE, size).astype(np.int64) + US_PER_SECOND
        times = first_us + np.cumsum(gaps) - gaps[0]
        times = times[times < self.end_us]
        if len(times) == 0:
            return 0
        card_not_present, merchant = self._burst_merchants(card, len(times))
        amount = (
            world.card_scale_usd[card] * world.merchant_factor[merchant] * np.exp(rng.normal(0.3, 0.55, len(times)))
        )
        pos = (
            np.full(len(times), ECOMMERCE)
            if card_not_present
            else rng.choice(STORE_POS_MODES, size=len(times), p=CLONED_CARD_POS_WEIGHTS)
        )
        self.rows["card"] += [card] * len(times)
        self.rows["merchant"] += merchant.tolist()
        self.rows["ts_us"] += times.tolist()
        self.rows["amount_usd"] += amount.tolist()
        self.rows["pos"] += pos.tolist()
        self.rows["fraud"] += [scenario] * len(times)
        self.rows["burst"] += [self.bursts] * len(times)
        self.bursts += 1
        self.compromised_cards.add(card)
        self.produced += len(times)
        return len(times)

    def _burst_merchants(self, card: int, count: int) -> tuple[bool, np.ndarray]:
        """Whether the burst is card-not-present, and its merchants: where the card has never been used."""
        rng, world = self.rng, self.world
        n_countries = len(world.countries)
        home = int(world.card_home[card])
        card_not_present = rng.random() < 0.6 or n_countries == 1
        if card_not_present:  # card details used online, often at foreign shops
            abroad = rng.random(count) < 0.6
            country = np.where(abroad, (home + rng.integers(1, max(n_countries, 2), count)) % n_countries, home)
            online = np.ones(count, dtype=bool)
        else:  # a cloned card used in shops of one foreign country
            country = np.full(count, (home + rng.integers(1, n_countries)) % n_countries)
            online = np.zeros(count, dtype=bool)
        # fraudsters shop where the card has never been used (any such shop of the kind, if the country has none)
        used = self.used_by(card)
        merchant = np.empty(count, dtype=np.int64)
        for index, (country_index, kind) in enumerate(zip(country.tolist(), online.tolist(), strict=True)):
            fresh = [m for m in world.groups[(country_index, kind)].tolist() if m not in used]
            if not fresh:
                fresh = [m for m in np.flatnonzero(world.merchant_online == kind).tolist() if m not in used]
            merchant[index] = fresh[int(rng.integers(0, len(fresh)))] if fresh else int(rng.integers(0, self.merchants))
        return card_not_present, merchant

    def events(self) -> Events:
        rows = self.rows
        return Events(
            card=np.array(rows["card"], dtype=np.int64),
            merchant=np.array(rows["merchant"], dtype=np.int64),
            ts_us=np.array(rows["ts_us"], dtype=np.int64),
            amount_usd=np.array(rows["amount_usd"], dtype=np.float64),
            pos=np.array(rows["pos"], dtype=np.int64),
            fraud=np.array(rows["fraud"], dtype=np.int8),
            burst=np.array(rows["burst"], dtype=np.int64),
        )


def concat_events(parts: Sequence[Events]) -> Events:
    return Events(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Events)})
