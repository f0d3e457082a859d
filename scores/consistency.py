"""Consistency of the ledger, for operators: totals against their accepted history, the
ranking index against the database, and the archive of old history rows.

`manage.py reconcile_scores` and `manage.py archive_history` are thin doors onto these.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Sum

from scores.models import Score, ScoreHistory, ScoreHistoryArchive

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TotalDifference:
    user_id: int
    total: int | None  # None: no score row
    live: int
    archived: int

    @property
    def expected(self) -> int:
        return self.live + self.archived


@dataclass(frozen=True, slots=True)
class IndexDifference:
    user_id: int
    index: int | None  # None: missing from the index
    database: int | None  # None: should not be ranked (no score, banned or inactive)


@dataclass(slots=True)
class Report:
    players: int = 0
    live_rows: int = 0
    archived_rows: int = 0
    totals: list[TotalDifference] = field(default_factory=list)
    index_checked: bool = False
    index_size: int = 0
    index: list[IndexDifference] = field(default_factory=list)


def _accepted_sums(model) -> tuple[dict[int, int], int]:
    rows = (
        model.objects.filter(voided_at__isnull=True)
        .values("user_id")
        .annotate(points=Sum("points"))
        .values_list("user_id", "points")
    )
    return {user_id: int(points or 0) for user_id, points in rows}, model.objects.count()


def totals_check(*, progress: Progress | None = None, chunk: int = 10_000) -> Report:
    """Compare every total with the sum of its accepted (not voided) history, live plus
    archived. A total with no history must be 0; history with no score row is a difference."""
    report = Report()
    live, report.live_rows = _accepted_sums(ScoreHistory)
    archived, report.archived_rows = _accepted_sums(ScoreHistoryArchive)
    seen: set[int] = set()
    count = Score.objects.count()
    for position, (user_id, total) in enumerate(
        Score.objects.order_by("user_id").values_list("user_id", "total_score").iterator(chunk_size=chunk), 1
    ):
        seen.add(user_id)
        mine_live, mine_archived = live.get(user_id, 0), archived.get(user_id, 0)
        if total != mine_live + mine_archived:
            report.totals.append(TotalDifference(user_id, total, mine_live, mine_archived))
        if progress and position % chunk == 0:
            progress(f"  totals: {position}/{count} players checked")
    for user_id in sorted((set(live) | set(archived)) - seen):
        mine_live, mine_archived = live.get(user_id, 0), archived.get(user_id, 0)
        if mine_live + mine_archived:
            report.totals.append(TotalDifference(user_id, None, mine_live, mine_archived))
    report.players = len(seen | set(live) | set(archived))
    return report


def totals_fix(*, differences: list[TotalDifference]) -> int:
    """Set each differing total to its accepted history, player by player: the score row is
    locked first, so a credit committing meanwhile is counted once, either way."""
    fixed = 0
    for difference in differences:
        with transaction.atomic():
            score = Score.objects.select_for_update().filter(user_id=difference.user_id).first()
            live = (
                ScoreHistory.objects.filter(user_id=difference.user_id, voided_at__isnull=True).aggregate(
                    points=Sum("points")
                )["points"]
                or 0
            )
            archived = (
                ScoreHistoryArchive.objects.filter(
                    user_id=difference.user_id, voided_at__isnull=True
                ).aggregate(points=Sum("points"))["points"]
                or 0
            )
            expected = live + archived
            if score is None:
                Score.objects.create(user_id=difference.user_id, total_score=expected)
                fixed += 1
            elif score.total_score != expected:
                Score.objects.filter(pk=score.pk).update(total_score=expected)
                fixed += 1
    return fixed


def index_check(*, report: Report, board: str | None = None, recheck_after: float = 1.0) -> None:
    """Compare the Redis ranking index with the ranked players of the database. Entries
    that differ are read again after `recheck_after` seconds: a credit in flight (committed,
    not yet indexed) is not a difference."""
    from leaderboard.selectors import board_keys, ranked_scores
    from scoreboard_project.redis import redis_client

    client = redis_client()
    if client is None:
        return
    key = board_keys(board).index

    def differences() -> list[IndexDifference]:
        index = {int(user): int(score) for user, score in client.zrange(key, 0, -1, withscores=True)}
        database = dict(ranked_scores().values_list("user_id", "total_score"))
        report.index_size = len(index)
        return [
            IndexDifference(user_id, index.get(user_id), database.get(user_id))
            for user_id in sorted(set(index) | set(database))
            if index.get(user_id) != database.get(user_id)
        ]

    found = differences()
    if found and recheck_after:
        time.sleep(recheck_after)
        again = {difference.user_id for difference in differences()}
        found = [difference for difference in found if difference.user_id in again]
    report.index_checked = True
    report.index = found


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    moved: int
    batches: int
    live_rows: int
    archived_rows: int


ARCHIVE_POSTGRES = """
WITH moved AS (
    DELETE FROM score_history WHERE id IN (
        SELECT id FROM score_history WHERE created_at < %(cutoff)s
        ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
    )
    RETURNING id, user_id, action_id, action_type, points, request_hash, created_at, client_ip,
              voided_at, voided_by_id
)
INSERT INTO score_history_archive (id, user_id, action_id, action_type, points, request_hash,
                                   created_at, client_ip, voided_at, voided_by_id, archived_at)
SELECT id, user_id, action_id, action_type, points, request_hash, created_at, client_ip,
       voided_at, voided_by_id, %(now)s
FROM moved
"""

COLUMNS = "id, user_id, action_id, action_type, points, request_hash, created_at, client_ip, voided_at, voided_by_id"


def history_archive(
    *, older_than: datetime, batch_size: int = 5000, progress: Progress | None = None
) -> ArchiveResult:
    """Move history rows created before `older_than` into `score_history_archive`, one
    transaction per batch (a row is deleted only with its copy; a conflict rolls back the batch). Totals do not change (they are sums of live + archived rows);
    running it again moves only what became old meanwhile."""
    from django.utils import timezone

    moved = batches = 0
    now = timezone.now()
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(ARCHIVE_POSTGRES, {"cutoff": older_than, "limit": batch_size, "now": now})
                count = cursor.rowcount
            else:
                ids = list(
                    ScoreHistory.objects.filter(created_at__lt=older_than)
                    .order_by("id")
                    .values_list("id", flat=True)[:batch_size]
                )
                if ids:
                    marks = ", ".join(["%s"] * len(ids))
                    cursor.execute(
                        f"INSERT INTO score_history_archive ({COLUMNS}, archived_at) "
                        f"SELECT {COLUMNS}, %s FROM score_history WHERE id IN ({marks})",
                        [now, *ids],
                    )
                    cursor.execute(f"DELETE FROM score_history WHERE id IN ({marks})", ids)
                count = len(ids)
        if not count:
            break
        moved += count
        batches += 1
        if progress:
            progress(f"  archived {moved} rows ({batches} batches)")
        if count < batch_size:
            break
    return ArchiveResult(moved, batches, ScoreHistory.objects.count(), ScoreHistoryArchive.objects.count())
