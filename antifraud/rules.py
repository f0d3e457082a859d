"""The anti-fraud rules, their modes and thresholds.

Each rule is switched in the admin (model `Rule`): `off`, `shadow` (evaluate and record what
it would have done, change nothing) or `enforce`. Thresholds come from the settings unless a
rule's row overrides them. Every process keeps a copy of the switches for
RULES_CACHE_SECONDS, so the hot path reads them without a query.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from scoreboard_project import aio

OFF, SHADOW, ENFORCE = "off", "shadow", "enforce"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    code: str
    description: str
    threshold_setting: str  # the setting that gives the default threshold


# Hot-path rules first (evaluated per request, inside the admission round trip), then the
# pattern rules of the periodic analysis (antifraud/patterns.py).
RULES = {
    spec.code: spec
    for spec in (
        RuleSpec(
            "ip_blocklist",
            "Refuse score updates from blocked addresses (403 FORBIDDEN).",
            "",
        ),
        RuleSpec(
            "penalties",
            "Ban a player for the next step of PENALTY_STEPS after PENALTY_VIOLATIONS rate-limit "
            "refusals within PENALTY_PERIOD. Threshold: the number of violations.",
            "PENALTY_VIOLATIONS",
        ),
        RuleSpec(
            "velocity",
            "Flag a player whose credited points in the last minute exceed the threshold.",
            "SUSPICIOUS_VELOCITY_THRESHOLD",
        ),
        RuleSpec(
            "manual_review",
            "Put a player under review when their gains within MANUAL_REVIEW_PERIOD exceed the "
            "threshold: further actions are held (202 pending_review) until a moderator decides.",
            "MANUAL_REVIEW_THRESHOLD",
        ),
        RuleSpec(
            "scripted_timing",
            "Flag a player whose intervals between actions are too regular: coefficient of "
            "variation below the threshold over at least PATTERN_MIN_ACTIONS actions.",
            "PATTERN_TIMING_MAX_CV",
        ),
        RuleSpec(
            "identical_sequences",
            "Flag accounts that submit the same sequence of actions (type and points), at least "
            "the threshold number of actions long.",
            "PATTERN_SEQUENCE_LENGTH",
        ),
        RuleSpec(
            "rate_limit_edge",
            "Flag a player who fills their rate-limit window to the edge in at least the "
            "threshold number of distinct windows (a bot pacing itself on the limit).",
            "PATTERN_EDGE_WINDOWS",
        ),
        RuleSpec(
            "ip_farm",
            "Flag the accounts behind one address when at least the threshold number of "
            "accounts scored from it within the analysis period.",
            "PATTERN_IP_ACCOUNTS",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class RuleState:
    code: str
    mode: str
    override: float | None = None  # the admin's threshold; None: the setting's

    @property
    def active(self) -> bool:
        return self.mode != OFF

    @property
    def threshold(self) -> float:
        if self.override is not None:
            return self.override
        setting = RULES[self.code].threshold_setting
        return float(getattr(settings, setting)) if setting else 0.0


def gains_crossed(
    states: dict[str, RuleState],
    *,
    velocity_before: int,
    velocity: int,
    gains_before: int,
    gains: int,
    under_review: bool,
) -> tuple[bool, bool]:
    """Which gains rules, (velocity, manual_review), this credited action takes over their
    threshold: only the crossing action fires, so a player above a threshold is judged once."""
    velocity_rule, review_rule = states["velocity"], states["manual_review"]
    return (
        velocity_rule.active and velocity_before <= velocity_rule.threshold < velocity,
        review_rule.active and not under_review and gains_before <= review_rule.threshold < gains,
    )


def _rule_states_load() -> dict[str, RuleState]:
    from antifraud.models import Rule

    rows = {row.code: row for row in Rule.objects.all()}
    states = {}
    for code in RULES:
        row = rows.get(code)
        states[code] = RuleState(code, row.mode if row else ENFORCE, row.threshold if row else None)
    return states


_states = aio.ProcessCopy(_rule_states_load, "RULES_CACHE_SECONDS")


def rule_states() -> dict[str, RuleState]:
    """Every rule's mode and threshold; re-read at most every RULES_CACHE_SECONDS."""
    return _states.get()


async def rule_states_async() -> dict[str, RuleState]:
    return await _states.get_async()


def rules_forget() -> None:
    """Drop this process's copy (an admin edit); other processes see it within the TTL."""
    _states.forget()
