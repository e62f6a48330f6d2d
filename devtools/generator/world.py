"""The simulated world: cards, merchants and countries, and the seeded random streams everything draws from."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from devtools.generator.config import COUNTRIES, US_PER_DAY, Country, GeneratorConfig


def stage_rng(seed: int, stage: int) -> np.random.Generator:
    return np.random.default_rng([seed, stage])


def hex_ids(rng: np.random.Generator, count: int, nbytes: int = 16) -> list[str]:
    text = rng.bytes(nbytes * count).hex()
    width = 2 * nbytes
    return [text[i : i + width] for i in range(0, width * count, width)]


def _luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it Luhn-valid."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # these get doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


def decimal_texts(units: np.ndarray, places: np.ndarray) -> list[str]:
    """Exact decimal text of units / 10**places, with exactly `places` decimals (none when 0)."""
    out = []
    for value, k in zip(units.tolist(), places.tolist(), strict=True):
        if k == 0:
            out.append(str(value))
        else:
            scale = 10**k
            out.append(f"{value // scale}.{value % scale:0{k}d}")
    return out


# --------------------------------------------------------------------------------------------- the world
@dataclass
class World:
    countries: tuple[Country, ...]
    currencies: dict[str, float]
    card_ids: list[str]
    card_home: np.ndarray  # country index
    card_scale_usd: np.ndarray  # typical amount in USD
    card_activity: np.ndarray  # relative transaction rate
    card_numbers: list[str]
    trip_start_us: np.ndarray  # -1: no trip
    trip_end_us: np.ndarray
    trip_country: np.ndarray
    merchant_ids: list[str]
    merchant_country: np.ndarray
    merchant_online: np.ndarray  # bool
    merchant_factor: np.ndarray  # price level
    merchant_popularity: np.ndarray  # Zipf-like weight within its (country, kind) group
    groups: dict[tuple[int, bool], np.ndarray]  # (country, online) -> merchant indexes


def build_world(cfg: GeneratorConfig, currencies: dict[str, float], start_us: int, end_us: int) -> World:
    """Cards (home country, spending scale, activity, number, maybe a trip) and merchants (country, store or
    online, price level, popularity), all from the world's own random stream, drawn in a fixed order."""
    rng = stage_rng(cfg.seed, 1)
    countries = tuple(c for c in COUNTRIES if c.currency in currencies)
    uncovered = sorted(set(currencies) - {c.currency for c in countries})
    if uncovered:
        known = ", ".join(sorted({c.currency for c in COUNTRIES}))
        raise ValueError(f"no country uses currency {', '.join(uncovered)} (the generator knows {known})")
    cards = _draw_cards(cfg, rng, countries)
    trips = _draw_trips(cfg, rng, cards["card_home"], len(countries), start_us, end_us)
    merchants = _draw_merchants(cfg, rng, countries)
    return World(countries=countries, currencies=currencies, **cards, **trips, **merchants)


def _draw_cards(cfg: GeneratorConfig, rng: np.random.Generator, countries: tuple[Country, ...]) -> dict[str, Any]:
    n_countries = len(countries)
    card_weights = np.array([c.card_weight for c in countries])
    card_weights /= card_weights.sum()
    # The first cards cover every country once, so even a small lake sees every currency.
    home = rng.choice(n_countries, size=cfg.cards, p=card_weights)
    covered = min(cfg.cards, n_countries)
    home[:covered] = rng.permutation(n_countries)[:covered]
    scale_usd = np.exp(rng.normal(math.log(40.0), 0.6, cfg.cards))
    activity = rng.gamma(2.0, 1.0, cfg.cards) + 0.05
    card_ids = [f"card_{h}" for h in hex_ids(rng, cfg.cards, 6)]
    brands = rng.choice(np.array(["4", "51", "52", "53", "54", "55"]), size=cfg.cards)
    bodies = rng.integers(0, 10, size=(cfg.cards, 15))
    card_numbers = []
    for brand, digits in zip(brands.tolist(), bodies.tolist(), strict=True):
        body = brand + "".join(map(str, digits))[: 15 - len(brand)]
        card_numbers.append(_luhn_complete(body))
    return {
        "card_ids": card_ids,
        "card_home": home,
        "card_scale_usd": scale_usd,
        "card_activity": activity,
        "card_numbers": card_numbers,
    }


def _draw_trips(
    cfg: GeneratorConfig, rng: np.random.Generator, home: np.ndarray, n_countries: int, start_us: int, end_us: int
) -> dict[str, np.ndarray]:
    """A trip of 2-7 days to another country for travel-rate of the cards (-1: no trip)."""
    travels = rng.random(cfg.cards) < cfg.travel_rate
    trip_length = rng.integers(2 * US_PER_DAY, 8 * US_PER_DAY, cfg.cards)
    trip_start = start_us + (rng.random(cfg.cards) * (end_us - start_us)).astype(np.int64)
    trip_start = np.where(travels, trip_start, -1)
    trip_end = np.where(travels, trip_start + trip_length, -1)
    shift = rng.integers(1, max(n_countries, 2), cfg.cards)
    trip_country = (home + shift) % n_countries if n_countries > 1 else home.copy()
    return {"trip_start_us": trip_start, "trip_end_us": trip_end, "trip_country": trip_country}


def _draw_merchants(cfg: GeneratorConfig, rng: np.random.Generator, countries: tuple[Country, ...]) -> dict[str, Any]:
    """Stores and online shops per country by its weight, and a Zipf-like popularity within each group."""
    n_merchants = cfg.merchants if cfg.merchants is not None else max(120, cfg.cards // 4)
    merchant_weights = np.array([c.merchant_weight for c in countries])
    merchant_weights /= merchant_weights.sum()
    merchant_country_list: list[int] = []
    merchant_online_list: list[bool] = []
    for index, weight in enumerate(merchant_weights):
        stores = max(3, round(n_merchants * 0.8 * weight))
        online = max(2, round(n_merchants * 0.2 * weight))
        merchant_country_list += [index] * (stores + online)
        merchant_online_list += [False] * stores + [True] * online
    merchant_country = np.array(merchant_country_list)
    merchant_online = np.array(merchant_online_list)
    total_merchants = len(merchant_country)
    merchant_ids = [f"mer_{h}" for h in hex_ids(rng, total_merchants, 5)]
    merchant_factor = np.exp(rng.normal(0.0, 0.5, total_merchants))
    popularity = np.zeros(total_merchants)
    groups: dict[tuple[int, bool], np.ndarray] = {}
    for country_index in range(len(countries)):
        for online in (False, True):
            members = np.flatnonzero((merchant_country == country_index) & (merchant_online == online))
            ranks = rng.permutation(len(members)) + 1
            weights = 1.0 / ranks**1.1
            popularity[members] = weights / weights.sum()
            groups[(country_index, online)] = members
    return {
        "merchant_ids": merchant_ids,
        "merchant_country": merchant_country,
        "merchant_online": merchant_online,
        "merchant_factor": merchant_factor,
        "merchant_popularity": popularity,
        "groups": groups,
    }


def pick_merchants(
    rng: np.random.Generator, world: World, country: np.ndarray, online: np.ndarray, *, popular: bool
) -> np.ndarray:
    """One merchant per row from its (country, online) group: by popularity, or uniformly (fraudsters)."""
    merchant = np.empty(len(country), dtype=np.int64)
    for (country_index, kind), members in world.groups.items():
        rows = np.flatnonzero((country == country_index) & (online == kind))
        if len(rows) == 0:
            continue
        weights = world.merchant_popularity[members] if popular else None
        merchant[rows] = rng.choice(members, size=len(rows), p=weights)
    return merchant
