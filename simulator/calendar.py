"""The fixture calendar: sporting events and promotions, generated per UTC day from the seed.

Each day's events come from their own RNG seeded by ``(seed, day)``, so the calendar of a day
never depends on which window was asked for. Kickoff slots follow the European football week
(Saturday 12:30/15:00/17:30, Champions League Tuesday/Wednesday nights, Europa League
Thursday), plus daily tennis and overnight (UTC) NBA. The football season is simulated all year
round: there is no summer break.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulator.config import SimulatorConfig

__all__ = ["Fixture", "day_fixtures", "day_label"]

_TEAMS: dict[str, tuple[str, ...]] = {
    "Premier League": (
        "Arsenal", "Chelsea", "Liverpool", "Manchester City", "Manchester United",
        "Tottenham", "Newcastle", "Aston Villa", "Brighton", "West Ham", "Everton",
        "Crystal Palace", "Fulham", "Brentford", "Wolves", "Bournemouth", "Nottingham Forest",
        "Leeds", "Burnley", "Sunderland",
    ),
    "Championship": (
        "Leicester", "Southampton", "Ipswich", "Norwich", "West Brom", "Middlesbrough",
        "Coventry", "Sheffield United", "Sheffield Wednesday", "Hull", "Stoke", "Millwall",
        "Bristol City", "Watford", "QPR", "Preston", "Derby", "Blackburn",
    ),
    "La Liga": (
        "Real Madrid", "Barcelona", "Atletico Madrid", "Sevilla", "Valencia", "Villarreal",
        "Real Sociedad", "Athletic Club", "Real Betis", "Girona",
    ),
    "Serie A": (
        "Inter", "Milan", "Juventus", "Napoli", "Roma", "Lazio", "Atalanta", "Fiorentina",
        "Bologna", "Torino",
    ),
    "Bundesliga": (
        "Bayern Munich", "Borussia Dortmund", "RB Leipzig", "Bayer Leverkusen", "Stuttgart",
        "Eintracht Frankfurt", "Wolfsburg", "Freiburg", "Hoffenheim", "Werder Bremen", "Mainz",
        "Augsburg", "Union Berlin", "Gladbach", "Heidenheim", "St. Pauli", "Hamburg", "Koln",
    ),
    "Ligue 1": (
        "PSG", "Marseille", "Lyon", "Monaco", "Lille", "Nice", "Lens", "Rennes",
    ),
    "Champions League": (
        "Real Madrid", "Barcelona", "Bayern Munich", "Manchester City", "Liverpool", "Arsenal",
        "Inter", "PSG", "Borussia Dortmund", "Atletico Madrid", "Juventus", "Milan", "Napoli",
        "Benfica", "Porto", "Ajax", "Celtic", "Bayer Leverkusen", "Chelsea", "Tottenham",
    ),
    "Europa League": (
        "Roma", "Lazio", "Sevilla", "Villarreal", "Rangers", "Feyenoord", "Sporting CP",
        "Braga", "Galatasaray", "Fenerbahce", "Olympiacos", "Lyon", "Manchester United",
        "Aston Villa", "Eintracht Frankfurt", "Real Sociedad",
    ),
    "Conference League": (
        "Fiorentina", "Brighton", "Club Brugge", "AZ Alkmaar", "Gent", "Hearts",
        "Slavia Prague", "Legia Warsaw", "Copenhagen", "Molde",
    ),
    "ATP Tour": (
        "Alcaraz", "Sinner", "Djokovic", "Zverev", "Medvedev", "Rune", "Fritz", "Ruud",
        "de Minaur", "Draper", "Tsitsipas", "Shelton",
    ),
    "WTA Tour": (
        "Sabalenka", "Swiatek", "Gauff", "Rybakina", "Pegula", "Zheng", "Paolini", "Navarro",
        "Keys", "Andreeva",
    ),
    "NBA": (
        "Lakers", "Celtics", "Warriors", "Nuggets", "Bucks", "Knicks", "76ers", "Heat",
        "Suns", "Mavericks", "Thunder", "Cavaliers", "Timberwolves", "Clippers",
    ),
    "EuroLeague": (
        "Real Madrid", "Barcelona", "Olympiacos", "Panathinaikos", "Fenerbahce", "Monaco",
        "Anadolu Efes", "Maccabi Tel Aviv", "Partizan", "Zalgiris",
    ),
}

# Clubs whose meetings draw extra interest (derbies and title clashes).
_BIG = frozenset(
    {"Arsenal", "Chelsea", "Liverpool", "Manchester City", "Manchester United", "Tottenham",
     "Real Madrid", "Barcelona", "Bayern Munich", "PSG", "Inter", "Milan", "Juventus"}
)

_SPORT = {c: "football" for c in _TEAMS} | {
    "ATP Tour": "tennis", "WTA Tour": "tennis", "NBA": "basketball", "EuroLeague": "basketball",
}

# Weekday (Mon=0) -> slots (competition, "HH:MM", min games, max games, importance lo, hi).
_SLOTS: dict[int, tuple[tuple[str, str, int, int, float, float], ...]] = {
    0: (("Premier League", "20:00", 1, 1, 0.4, 0.8), ("La Liga", "20:00", 0, 1, 0.2, 0.4)),
    1: (("Champions League", "17:45", 0, 2, 0.5, 0.8),
        ("Champions League", "20:00", 2, 4, 0.55, 1.0),
        ("Championship", "19:45", 2, 4, 0.1, 0.3)),
    2: (("Champions League", "17:45", 0, 2, 0.5, 0.8),
        ("Champions League", "20:00", 2, 4, 0.55, 1.0),
        ("Championship", "19:45", 1, 3, 0.1, 0.3)),
    3: (("Europa League", "17:45", 2, 3, 0.3, 0.55), ("Europa League", "20:00", 2, 3, 0.3, 0.6),
        ("Conference League", "17:45", 1, 2, 0.15, 0.3),
        ("Conference League", "20:00", 1, 2, 0.15, 0.3)),
    4: (("Bundesliga", "19:30", 1, 1, 0.25, 0.5), ("Ligue 1", "19:45", 1, 1, 0.2, 0.45),
        ("Championship", "20:00", 0, 1, 0.15, 0.3), ("EuroLeague", "19:00", 1, 2, 0.1, 0.2)),
    5: (("Premier League", "12:30", 1, 1, 0.5, 0.9), ("Premier League", "15:00", 3, 6, 0.35, 0.7),
        ("Premier League", "17:30", 1, 1, 0.5, 0.9), ("Championship", "15:00", 5, 8, 0.1, 0.3),
        ("Bundesliga", "14:30", 3, 5, 0.2, 0.45), ("Bundesliga", "17:30", 1, 1, 0.3, 0.55),
        ("La Liga", "13:00", 1, 1, 0.2, 0.45), ("La Liga", "17:30", 1, 1, 0.25, 0.5),
        ("La Liga", "20:00", 1, 1, 0.3, 0.6), ("Serie A", "14:00", 1, 1, 0.2, 0.4),
        ("Serie A", "19:45", 1, 1, 0.3, 0.55)),
    6: (("Premier League", "14:00", 2, 3, 0.45, 0.8), ("Premier League", "16:30", 1, 1, 0.5, 0.9),
        ("La Liga", "15:15", 1, 1, 0.2, 0.45), ("La Liga", "20:00", 1, 1, 0.3, 0.6),
        ("Serie A", "11:30", 1, 1, 0.15, 0.35), ("Serie A", "17:00", 1, 1, 0.25, 0.5),
        ("Serie A", "19:45", 1, 1, 0.3, 0.55), ("Bundesliga", "16:30", 1, 1, 0.25, 0.5)),
}

_DURATION = {"football": 112.0, "basketball": 140.0}
# Mean in-play spikes per match: goals (~2.7 a football match), breaks of serve, scoring runs.
_SPIKES_PER_MATCH = {"football": 2.7, "tennis": 2.0, "basketball": 3.0}
_PROMOTIONS = ("Acca Boost", "Enhanced Odds", "Free Bet Friday", "Deposit Bonus")


@dataclass(frozen=True)
class Fixture:
    """One event of the calendar (times in minutes since 00:00 UTC of ``day``)."""

    event_id: str
    day: int
    kickoff: float
    duration: float
    sport: str
    competition: str
    importance: float
    name: str
    uplift: float
    spike_times: tuple[float, ...] = ()
    spike_mults: tuple[float, ...] = ()
    spike_taus: tuple[float, ...] = ()


def day_label(day: int) -> str:
    """``YYYYMMDD`` of a day number (days since 1970-01-01)."""
    return str(np.datetime64(day, "D")).replace("-", "")


def _minutes(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return 60.0 * int(h) + int(m)


def _spikes(
    rng: np.random.Generator, sport: str, duration: float, goal_mult: tuple[float, float]
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    n = int(rng.poisson(_SPIKES_PER_MATCH.get(sport, 0.0)))
    u = rng.random(n)
    if sport == "football":
        # playing time only: 0-47 and 62-duration (no goals in the half-time break)
        play = 47.0 + (duration - 62.0)
        raw = u * play
        times = np.where(raw < 47.0, raw, raw + 15.0)
    else:
        times = u * duration
    mults = rng.uniform(goal_mult[0], goal_mult[1], n)
    # decay constant 1-1.7 min: the spike is mostly gone after 3-5 min [GC]
    taus = rng.uniform(1.0, 1.7, n)
    order = np.argsort(times)
    return (
        tuple(float(x) for x in times[order]),
        tuple(float(x) for x in mults[order]),
        tuple(float(x) for x in taus[order]),
    )


def _raw_events(seed: int, day: int) -> list[tuple]:
    """Calendar draws for one day, independent of every surge parameter."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, day, 1]))
    dow = (day + 3) % 7
    events: list[tuple] = []
    used: dict[str, list[str]] = {}

    def pair(comp: str) -> str:
        pool = used.get(comp)
        if not pool or len(pool) < 2:
            pool = [str(x) for x in rng.permutation(_TEAMS[comp])]
            used[comp] = pool
        home, away = pool.pop(), pool.pop()
        return f"{home} v {away}"

    for comp, hhmm, lo, hi, imp_lo, imp_hi in _SLOTS[dow]:
        for _ in range(int(rng.integers(lo, hi + 1))):
            name = pair(comp)
            imp = float(rng.uniform(imp_lo, imp_hi))
            home, away = name.split(" v ")
            if home in _BIG and away in _BIG:
                imp = min(1.0, imp + 0.2)
            events.append((comp, _minutes(hhmm), imp, name, None))
    for _ in range(int(rng.integers(2, 7))):
        comp = "ATP Tour" if rng.random() < 0.55 else "WTA Tour"
        start = 600.0 + 30.0 * float(rng.integers(0, 19))  # 10:00-19:00 on the half hour
        duration = float(rng.integers(80, 201))
        events.append((comp, start, float(rng.uniform(0.05, 0.4)), pair(comp), duration))
    for _ in range(int(rng.integers(2, 9))):
        start = 30.0 * float(rng.integers(0, 8))  # 00:00-03:30 UTC, US evening
        events.append(("NBA", start, float(rng.uniform(0.05, 0.25)), pair("NBA"), None))
    return events


@lru_cache(maxsize=256)
def day_fixtures(config: SimulatorConfig, day: int) -> tuple[Fixture, ...]:
    """All events whose kickoff (or promotion start) falls on UTC ``day``, sorted by kickoff.

    Args:
        config: the simulator config (seed, surge parameters).
        day: days since 1970-01-01.
    """
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, day, 2]))
    label = day_label(day)
    out: list[Fixture] = []
    raw = _raw_events(config.seed, day)
    order = sorted(range(len(raw)), key=lambda i: (raw[i][1], raw[i][3]))
    for k, i in enumerate(order):
        comp, kickoff, imp, name, duration = raw[i]
        sport = _SPORT[comp]
        dur = duration if duration is not None else _DURATION[sport]
        times, mults, taus = _spikes(rng, sport, dur, config.goal_multiplier)
        out.append(
            Fixture(
                event_id=f"fx-{label}-{k:03d}",
                day=day,
                kickoff=kickoff,
                duration=dur,
                sport=sport,
                competition=comp,
                importance=round(imp, 4),
                name=name,
                uplift=config.event_uplift(comp, round(imp, 4)),
                spike_times=times,
                spike_mults=mults,
                spike_taus=taus,
            )
        )
    # Promotions: rarer early in the week, more likely Friday/Saturday.
    dow = (day + 3) % 7
    weight = 2.0 if dow in (4, 5) else 0.7
    for j in range(int(rng.poisson(config.promotions_per_day * weight))):
        start = 60.0 * float(rng.integers(9, 19))
        dur = 60.0 * float(rng.integers(2, 5))
        uplift = float(rng.uniform(1.15, 1.4))
        promo = _PROMOTIONS[int(rng.integers(0, len(_PROMOTIONS)))]
        out.append(
            Fixture(
                event_id=f"promo-{label}-{j:02d}",
                day=day,
                kickoff=start,
                duration=dur,
                sport="promotion",
                competition=promo,
                importance=round((uplift - 1.0) / 0.5, 4),
                name=f"{promo} promotion",
                uplift=uplift,
            )
        )
    return tuple(out)
