"""A mixed traffic scenario through the real API, to measure what each rule catches.

Honest players, scripted bots, a burst cheater and a farm of accounts behind one address
submit scores through the production ASGI application (the hot door, the admission script,
the group commit: everything a server runs), each from its own address behind a trusted
proxy. Time is compressed: the rate-limit window is a few seconds, so the run takes about
half a minute. Then the pattern analysis runs over the scenario's players and the report
says, per rule, how many cheaters it caught and how many honest players it flagged.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.test import override_settings

from scoreboard_project import aio
from scoreboard_project.asgiclient import asgi_call

HONEST, BOT, BURST, FARM = "honest", "scripted bot", "burst cheater", "IP farm"
TYPES = {"quest": (1, 100), "match_win": (10, 200)}


@dataclass
class Actor:
    kind: str
    username: str
    address: str
    user_id: int = 0
    token: str = ""
    answers: dict | None = None


@dataclass(frozen=True)
class Options:
    honest: int = 12
    bots: int = 3
    farm: int = 6
    window: int = 3  # seconds of the compressed rate-limit window
    limit: int = 10
    seed: int = 1


def _settings(options: Options) -> dict:
    return {
        "RATE_LIMIT_PER_USER": options.limit,
        "RATE_LIMIT_WINDOW": options.window,
        "RATE_LIMIT_GLOBAL": 1_000_000,
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        # A burst of maximum points is what these catch; honest play stays well under.
        "SUSPICIOUS_VELOCITY_THRESHOLD": 5000,
        "MANUAL_REVIEW_THRESHOLD": 6000,
        "PENALTY_VIOLATIONS": 1000,  # the report is about detection, not about bans
    }


async def _post(actor: Actor, action: dict) -> int:
    headers = {
        "Authorization": f"Bearer {actor.token}",
        "Content-Type": "application/json",
        "X-Forwarded-For": actor.address,
    }
    response = await asgi_call("POST", "/api/scores", json.dumps(action).encode(), headers)
    actor.answers[response.status_code] = actor.answers.get(response.status_code, 0) + 1
    return response.status_code


def _action(kind: str, points: int) -> dict:
    return {"action_id": str(uuid.uuid4()), "action_type": kind, "points": points}


async def _honest(actor: Actor, rng: random.Random, options: Options) -> None:
    # Irregular: exponential gaps averaging a third of the window, varied actions.
    for _ in range(12):
        await asyncio.sleep(rng.expovariate(3 / options.window))
        kind = rng.choice(list(TYPES))
        await _post(actor, _action(kind, rng.randint(*TYPES[kind])))


async def _bot(actor: Actor, script: list[tuple[str, int]], options: Options) -> None:
    # A script: the same recorded sequence, one action every half second.
    for kind, points in script:
        started = time.monotonic()
        await _post(actor, _action(kind, points))
        await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - started)))


async def _burst(actor: Actor, rng: random.Random, options: Options) -> None:
    # Fills a window to the limit at once with big actions, waits for the window to pass
    # (a bot that knows the limit is never refused), four times.
    for _ in range(4):
        for _ in range(options.limit):
            await _post(actor, _action("match_win", rng.randint(190, 200)))
        await asyncio.sleep(options.window + 0.2)


async def _play(actors: list[Actor], options: Options) -> None:
    rng = random.Random(options.seed)
    script = [(rng.choice(list(TYPES)), rng.randint(20, 90)) for _ in range(16)]
    jobs = []
    for actor in actors:
        actor.answers = {}
        own = random.Random(rng.random())
        if actor.kind in (HONEST, FARM):
            jobs.append(_honest(actor, own, options))
        elif actor.kind == BOT:
            jobs.append(_bot(actor, script, options))
        else:
            jobs.append(_burst(actor, own, options))
    await asyncio.gather(*jobs)


def _cast(options: Options, run: str) -> list[Actor]:
    actors = [Actor(HONEST, f"scn{run}-honest{n}", f"198.51.100.{n + 1}") for n in range(options.honest)]
    actors += [Actor(BOT, f"scn{run}-bot{n}", f"198.51.101.{n + 1}") for n in range(options.bots)]
    actors += [Actor(BURST, f"scn{run}-burst", "198.51.102.1")]
    actors += [Actor(FARM, f"scn{run}-farm{n}", "203.0.113.50") for n in range(options.farm)]
    return actors


def run_scenario(options: Options | None = None, *, keep: bool = False) -> dict:
    """Play the scenario, analyse it, and return the report (see `report_lines`)."""
    from accounts.models import User
    from accounts.services import session_open, user_register
    from antifraud.models import Flag
    from antifraud.patterns import analyse

    options = options or Options()
    run = uuid.uuid4().hex[:6]
    actors = _cast(options, run)
    password = uuid.uuid4().hex + "Aa1!"
    started = time.monotonic()
    with override_settings(**_settings(options)):
        for actor in actors:
            user = user_register(username=actor.username, password=password)
            actor.user_id = user.pk
            actor.token = session_open(user=user)["access"]
        aio.run(_play(actors, options), timeout=300)
        ids = [actor.user_id for actor in actors]
        analyse(window=600, user_ids=ids)
        played = time.monotonic() - started
        flags = list(Flag.objects.filter(user_id__in=ids).values_list("rule", "user_id"))
        farm_flags = Flag.objects.filter(rule="ip_farm", client_ip__in={a.address for a in actors})
        for evidence in farm_flags.values_list("evidence", flat=True):
            flags += [("ip_farm", user_id) for user_id in evidence["user_ids"] if user_id in ids]
    kinds = {actor.user_id: actor.kind for actor in actors}
    by_rule: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for rule, user_id in flags:
        by_rule[rule][kinds[user_id]].add(user_id)
    counts = {kind: sum(1 for actor in actors if actor.kind == kind) for kind in (HONEST, BOT, BURST, FARM)}
    caught_any = {
        user_id
        for rule in by_rule.values()
        for kind, users in rule.items()
        if kind != HONEST
        for user_id in users
    }
    answers: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for actor in actors:
        for status, count in actor.answers.items():
            answers[actor.kind][status] += count
    report = {
        "players": counts,
        "seconds": round(played, 1),
        "answers": {kind: dict(statuses) for kind, statuses in answers.items()},
        "rules": {
            rule: {kind: len(users) for kind, users in kinds_.items()}
            for rule, kinds_ in sorted(by_rule.items())
        },
        "cheaters_caught": len(caught_any),
        "cheaters": counts[BOT] + counts[BURST] + counts[FARM],
        "honest_flagged": len({u for rule in by_rule.values() for u in rule.get(HONEST, ())}),
    }
    if not keep:
        User.objects.filter(pk__in=[actor.user_id for actor in actors]).delete()
        Flag.objects.filter(
            rule="ip_farm", client_ip__in={a.address for a in actors}, user__isnull=True
        ).delete()
    return report


def report_lines(report: dict) -> list[str]:
    counts = report["players"]
    lines = [
        f"players: {counts[HONEST]} honest, {counts[BOT]} scripted bots, {counts[BURST]} burst cheater, "
        f"{counts[FARM]} accounts behind one address; played in {report['seconds']} s",
        "answers: " + "; ".join(f"{kind} {statuses}" for kind, statuses in report["answers"].items()),
        "",
        f"{'rule':<22}{'bots':>8}{'burst':>8}{'farm':>8}{'honest flagged':>17}",
    ]
    for rule, kinds in report["rules"].items():
        lines.append(
            f"{rule:<22}{kinds.get(BOT, 0):>5}/{counts[BOT]:<2}{kinds.get(BURST, 0):>5}/{counts[BURST]:<2}"
            f"{kinds.get(FARM, 0):>5}/{counts[FARM]:<2}{kinds.get(HONEST, 0):>11}/{counts[HONEST]}"
        )
    lines += [
        "",
        f"cheaters caught by at least one rule: {report['cheaters_caught']}/{report['cheaters']}; "
        f"honest players flagged: {report['honest_flagged']}/{counts[HONEST]}",
    ]
    return lines
