"""The ledger write: credit one action exactly once, with no read-modify-write.

On PostgreSQL it is one statement: the history insert (which does nothing if the
`action_id` exists, in `score_history` or in its archive) feeds the upsert of the total, and the new total comes back. The
unique index on `action_id` serialises concurrent duplicates; the upsert locks the
player's score row, so concurrent credits of one player add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from scoreboard_project import aio
from scores.validation import ScoreAction

POSTGRES_CREDIT = """
WITH credited AS (
    INSERT INTO score_history (user_id, action_id, action_type, points, request_hash, client_ip, created_at)
    SELECT * FROM (VALUES (
        %(user_id)s, %(action_id)s, %(action_type)s, %(points)s, %(request_hash)s, %(client_ip)s::inet,
        clock_timestamp()
    )) AS v
    WHERE NOT EXISTS (SELECT 1 FROM score_history_archive a WHERE a.action_id = %(action_id)s)
    ON CONFLICT (action_id) DO NOTHING
    RETURNING user_id, points
)
INSERT INTO score AS s (user_id, total_score, updated_at)
SELECT user_id, points, clock_timestamp() FROM credited
ON CONFLICT (user_id) DO UPDATE
    SET total_score = s.total_score + EXCLUDED.total_score, updated_at = EXCLUDED.updated_at
RETURNING total_score, updated_at
"""

SQLITE_HISTORY = """
INSERT INTO score_history (user_id, action_id, action_type, points, request_hash, client_ip, created_at)
SELECT %(user_id)s, %(action_id)s, %(action_type)s, %(points)s, %(request_hash)s, %(client_ip)s, %(now)s
WHERE NOT EXISTS (SELECT 1 FROM score_history_archive WHERE action_id = %(action_id)s)
ON CONFLICT (action_id) DO NOTHING
RETURNING id
"""

SQLITE_TOTAL = """
INSERT INTO score (user_id, total_score, updated_at) VALUES (%(user_id)s, %(points)s, %(now)s)
ON CONFLICT (user_id) DO UPDATE
    SET total_score = total_score + excluded.total_score, updated_at = excluded.updated_at
RETURNING total_score
"""


@dataclass(frozen=True, slots=True)
class Credit:
    """The outcome of a ledger write: `total` is None when the action_id already existed."""

    total: int | None
    reached_at: datetime | None


def credit_params(user_id: int, action: ScoreAction) -> dict:
    return {
        "user_id": user_id,
        "action_id": action.action_id,
        "action_type": action.action_type,
        "points": action.points,
        "request_hash": action.digest(),
        "client_ip": action.client_ip,
    }


def ledger_credit(*, user_id: int, action: ScoreAction) -> Credit:
    """Write the history row and add to the total atomically; commit before returning.

    The synchronous form, through Django's connection: the embedded default (SQLite) and
    the fallback of the async ledger.
    """
    params = credit_params(user_id, action)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(POSTGRES_CREDIT, params)
            row = cursor.fetchone()
        return Credit(*row) if row else Credit(None, None)
    return _credit_portable(params)


def _credit_portable(params: dict) -> Credit:
    """The same write as two statements in one transaction (SQLite has no writable CTEs)."""
    now = timezone.now()
    params["now"] = now.isoformat(sep=" ").replace("+00:00", "")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SQLITE_HISTORY, params)
        if cursor.fetchone() is None:
            return Credit(None, None)
        cursor.execute(SQLITE_TOTAL, params)
        (total,) = cursor.fetchone()
    return Credit(total, now)


async def ledger_credit_async(*, user_id: int, action: ScoreAction) -> Credit:
    """Credit one action: through the group committer on PostgreSQL, else the sync form."""
    if aio.postgres_enabled():
        committer = await _committer()
        return await committer.submit(user_id, action)
    return await aio.db_call(ledger_credit)(user_id=user_id, action=action)


async def ledger_credit_many(items: list[tuple[int, ScoreAction]]) -> list[Credit]:
    """Credit a trusted batch: one statement on PostgreSQL, one by one elsewhere."""
    if aio.postgres_enabled():
        committer = await _committer()
        return await committer.submit_many(items)
    credit_one = aio.db_call(ledger_credit)
    return [await credit_one(user_id=user_id, action=action) for user_id, action in items]


async def _committer():
    """This loop's group committer (made on first use; asked on every credit)."""
    committer = aio.loop_resources().singletons.get("group-commit")
    if committer is None:
        from scores.groupcommit import GroupCommitter  # it imports this module

        pool = await aio.pg_pool()
        committer = aio.loop_singleton("group-commit", lambda: GroupCommitter(pool))
    return committer
