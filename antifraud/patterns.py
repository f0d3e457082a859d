"""Pattern analysis over recent history: the heavy rules, run by Celery (or a command).

Four rules look at the last PATTERN_WINDOW seconds of credited actions:
- scripted_timing: intervals between a player's actions too regular (coefficient of
  variation under PATTERN_TIMING_MAX_CV over at least PATTERN_MIN_ACTIONS actions);
- identical_sequences: accounts submitting the same run of PATTERN_SEQUENCE_LENGTH actions
  (type and points; runs of fewer than 3 distinct actions are ignored, since a game with one
  kind of action makes everyone's runs alike);
- rate_limit_edge: a player filling their rate-limit window to the limit in at least
  PATTERN_EDGE_WINDOWS separate windows;
- ip_farm: at least PATTERN_IP_ACCOUNTS accounts scoring from one address.

A finding becomes a flag with its evidence (open in the queue when the rule is enforced,
`shadow` when it is in shadow mode). Running the analysis twice raises nothing twice: a
player (or address) already flagged by the rule within the window is skipped.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from antifraud.models import Decision, Flag
from antifraud.rules import rule_states

EVIDENCE_LIMIT = 50


@dataclass(slots=True)
class Action:
    action_id: str
    action_type: str
    points: int
    at: datetime
    ip: str | None


@dataclass(slots=True)
class Finding:
    rule: str
    threshold: float
    observed: float
    summary: str
    evidence: dict
    user_id: int | None = None
    client_ip: str | None = None
    severity: str = Flag.MEDIUM
    action_ids: list[str] = field(default_factory=list)


def history_by_player(
    *, since: datetime, until: datetime, user_ids: list[int] | None = None
) -> dict[int, list[Action]]:
    from scores.models import ScoreHistory

    players: dict[int, list[Action]] = defaultdict(list)
    rows = ScoreHistory.objects.filter(created_at__gte=since, created_at__lt=until, voided_at__isnull=True)
    if user_ids is not None:
        rows = rows.filter(user_id__in=user_ids)
    rows = rows.order_by("user_id", "created_at", "id").values_list(
        "user_id", "action_id", "action_type", "points", "created_at", "client_ip"
    )
    for user_id, action_id, action_type, points, at, ip in rows.iterator(chunk_size=5000):
        players[user_id].append(Action(action_id, action_type, points, at, ip))
    return players


def scripted_timing(players: dict[int, list[Action]], *, max_cv: float, min_actions: int) -> list[Finding]:
    findings = []
    for user_id, actions in players.items():
        if len(actions) < min_actions:
            continue
        intervals = [(b.at - a.at).total_seconds() for a, b in zip(actions, actions[1:], strict=False)]
        mean = statistics.fmean(intervals)
        if mean <= 0:
            continue
        cv = statistics.pstdev(intervals) / mean
        if cv < max_cv:
            findings.append(
                Finding(
                    "scripted_timing",
                    max_cv,
                    round(cv, 4),
                    f"{len(actions)} actions every {mean:.2f} s (variation {cv:.3f} < {max_cv:g})",
                    {
                        "actions": len(actions),
                        "mean_interval_seconds": round(mean, 4),
                        "stdev_interval_seconds": round(statistics.pstdev(intervals), 4),
                        "coefficient_of_variation": round(cv, 4),
                        "timestamps": [a.at.isoformat() for a in actions[:EVIDENCE_LIMIT]],
                    },
                    user_id=user_id,
                    severity=Flag.HIGH,
                    action_ids=[a.action_id for a in actions],
                )
            )
    return findings


def identical_sequences(players: dict[int, list[Action]], *, length: int) -> list[Finding]:
    runs: dict[tuple, set[int]] = defaultdict(set)
    first_seen: dict[tuple[int, tuple], list[str]] = {}
    for user_id, actions in players.items():
        steps = [(a.action_type, a.points) for a in actions]
        for start in range(len(steps) - length + 1):
            run = tuple(steps[start : start + length])
            if len(set(run)) < 3:
                continue
            runs[run].add(user_id)
            first_seen.setdefault((user_id, run), [a.action_id for a in actions[start : start + length]])
    shared: dict[int, tuple[tuple, set[int]]] = {}
    for run, users in runs.items():
        if len(users) < 2:
            continue
        for user_id in users:
            if user_id not in shared or len(users) > len(shared[user_id][1]):
                shared[user_id] = (run, users)
    findings = []
    for user_id, (run, users) in sorted(shared.items()):
        others = sorted(users - {user_id})
        findings.append(
            Finding(
                "identical_sequences",
                length,
                len(run),
                f"the same {len(run)} actions as {len(others)} other account(s)",
                {
                    "sequence": [{"type": kind, "points": points} for kind, points in run],
                    "other_accounts": others[:EVIDENCE_LIMIT],
                },
                user_id=user_id,
                severity=Flag.HIGH,
                action_ids=first_seen[(user_id, run)],
            )
        )
    return findings


def rate_limit_edge(
    players: dict[int, list[Action]], *, limit: int, window: float, min_windows: int
) -> list[Finding]:
    findings = []
    for user_id, actions in players.items():
        full: list[tuple[int, int]] = []  # (first, last) positions of each window filled to the limit
        position = 0
        while position + limit - 1 < len(actions):
            last = position + limit - 1
            if (actions[last].at - actions[position].at).total_seconds() < window:
                full.append((position, last))
                # The next window starts after this one ends: windows never overlap.
                ends = actions[position].at + timedelta(seconds=window)
                position = last + 1
                while position < len(actions) and actions[position].at < ends:
                    position += 1
            else:
                position += 1
        if len(full) >= min_windows:
            findings.append(
                Finding(
                    "rate_limit_edge",
                    min_windows,
                    len(full),
                    f"{len(full)} windows filled to the limit of {limit} per {window:g} s",
                    {
                        "limit": limit,
                        "window_seconds": window,
                        "full_windows": [
                            {"from": actions[a].at.isoformat(), "to": actions[b].at.isoformat()}
                            for a, b in full[:EVIDENCE_LIMIT]
                        ],
                    },
                    user_id=user_id,
                    action_ids=[actions[i].action_id for a, b in full for i in range(a, b + 1)],
                )
            )
    return findings


def ip_farm(players: dict[int, list[Action]], *, min_accounts: int) -> list[Finding]:
    accounts: dict[str, set[int]] = defaultdict(set)
    for user_id, actions in players.items():
        for action in actions:
            if action.ip:
                accounts[action.ip].add(user_id)
    return [
        Finding(
            "ip_farm",
            min_accounts,
            len(users),
            f"{len(users)} accounts scored from {ip}",
            {"address": ip, "user_ids": sorted(users)[: EVIDENCE_LIMIT * 4]},
            client_ip=ip,
            severity=Flag.MEDIUM,
        )
        for ip, users in sorted(accounts.items())
        if len(users) >= min_accounts
    ]


def analyse(
    *, window: int | None = None, now: datetime | None = None, user_ids: list[int] | None = None
) -> dict[str, int]:
    """Run every active pattern rule over the last `window` seconds (of `user_ids` only, if
    given); return the new flags per rule."""
    from antifraud.services import decision_record, flag_raise

    window = window or settings.PATTERN_WINDOW
    until = now or timezone.now()
    since = until - timedelta(seconds=window)
    states = rule_states()
    players = history_by_player(since=since, until=until, user_ids=user_ids)
    findings: list[Finding] = []
    if states["scripted_timing"].active:
        findings += scripted_timing(
            players, max_cv=states["scripted_timing"].threshold, min_actions=settings.PATTERN_MIN_ACTIONS
        )
    if states["identical_sequences"].active:
        findings += identical_sequences(players, length=int(states["identical_sequences"].threshold))
    if states["rate_limit_edge"].active:
        findings += rate_limit_edge(
            players,
            limit=settings.RATE_LIMIT_PER_USER,
            window=settings.RATE_LIMIT_WINDOW,
            min_windows=int(states["rate_limit_edge"].threshold),
        )
    if states["ip_farm"].active:
        findings += ip_farm(players, min_accounts=int(states["ip_farm"].threshold))

    raised = {code: 0 for code in ("scripted_timing", "identical_sequences", "rate_limit_edge", "ip_farm")}
    for finding in findings:
        recent = Flag.objects.filter(rule=finding.rule, created_at__gte=since)
        recent = (
            recent.filter(user_id=finding.user_id)
            if finding.user_id
            else recent.filter(client_ip=finding.client_ip, user__isnull=True)
        )
        if recent.exists():
            continue  # flagged already within the window: running twice raises nothing twice
        mode = states[finding.rule].mode
        subject = f"user:{finding.user_id}" if finding.user_id else f"ip:{finding.client_ip}"
        flag, created = flag_raise(
            rule=finding.rule,
            mode=mode,
            fingerprint=f"{subject}:{until:%Y%m%dT%H%M}",
            user_id=finding.user_id,
            client_ip=finding.client_ip,
            severity=finding.severity,
            threshold=finding.threshold,
            observed=finding.observed,
            summary=finding.summary,
            evidence={**finding.evidence, "action_ids": finding.action_ids, "since": since.isoformat()},
        )
        if not created:
            continue
        raised[finding.rule] += 1
        decision_record(
            rule=finding.rule,
            mode=mode,
            outcome=Decision.FLAGGED,
            user_id=finding.user_id,
            action_id=finding.action_ids[-1] if finding.action_ids else "",
            client_ip=finding.client_ip,
            threshold=finding.threshold,
            observed=finding.observed,
            evidence={"flag_summary": finding.summary, "actions": len(finding.action_ids)},
            flag=flag,
        )
    return raised
