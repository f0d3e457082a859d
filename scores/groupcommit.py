"""Group commit: concurrent credits share one PostgreSQL statement and transaction.

Submissions queue up; a flush takes up to GROUP_COMMIT_MAX_BATCH of them after waiting at
most GROUP_COMMIT_MAX_WAIT_MS, and up to GROUP_COMMIT_CONCURRENCY flushes run at once. One
statement inserts the history rows in action_id order and adds each player's sum in user_id
order, so concurrent batches lock rows in the same order and cannot deadlock. If the
statement fails, its actions are retried one by one, so one bad action never fails its
neighbours. Every submitter gets the answer for its own action.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings

from scoreboard_project import metrics
from scoreboard_project.errors import database_unavailable
from scores.ledger import POSTGRES_CREDIT, Credit, credit_params
from scores.validation import ScoreAction

logger = logging.getLogger("scoreboard.scores")

# The arrays travel in binary (%b): in text, each element is checked for characters to quote,
# a regular expression per element, a third of this statement's client-side cost.
BATCH_CREDIT = """
WITH input AS (
    SELECT * FROM unnest(
        %(user_ids)b::bigint[], %(action_ids)b::text[], %(action_types)b::text[],
        %(points)b::integer[], %(request_hashes)b::text[], %(client_ips)b::inet[]
    ) AS t(user_id, action_id, action_type, points, request_hash, client_ip)
), credited AS (
    INSERT INTO score_history (user_id, action_id, action_type, points, request_hash, client_ip, created_at)
    SELECT user_id, action_id, action_type, points, request_hash, client_ip, clock_timestamp()
    FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM score_history_archive a WHERE a.action_id = i.action_id)
    ORDER BY action_id
    ON CONFLICT (action_id) DO NOTHING
    RETURNING user_id, action_id
), totals AS (
    INSERT INTO score AS s (user_id, total_score, updated_at)
    SELECT i.user_id, sum(i.points), clock_timestamp()
    FROM credited c JOIN input i USING (action_id)
    GROUP BY i.user_id ORDER BY i.user_id
    ON CONFLICT (user_id) DO UPDATE
        SET total_score = s.total_score + EXCLUDED.total_score, updated_at = EXCLUDED.updated_at
    RETURNING user_id, total_score, updated_at
)
SELECT c.action_id, t.total_score, t.updated_at FROM credited c JOIN totals t USING (user_id)
"""


@dataclass(slots=True)
class Pending:
    user_id: int
    action: ScoreAction
    future: asyncio.Future = field(repr=False)


def batch_credits(pending: list[Pending], rows: list[tuple]) -> list[Credit]:
    """Give each pending action its own answer from the statement's rows.

    A player with several actions in one batch gets, for each, the total as it stood right
    after that action: the final total less the points of their later actions in the batch.
    """
    final = {action_id: (total, reached_at) for action_id, total, reached_at in rows}
    later_points: dict[int, int] = {}
    credits: list[Credit] = [Credit(None, None)] * len(pending)
    for position in range(len(pending) - 1, -1, -1):
        item = pending[position]
        found = final.get(item.action.action_id)
        if found is None:
            continue
        total, reached_at = found
        already = later_points.get(item.user_id, 0)
        credits[position] = Credit(total - already, reached_at)
        later_points[item.user_id] = already + item.action.points
    return credits


class GroupCommitter:
    def __init__(self, pool) -> None:
        self.pool = pool
        self.queue: list[Pending] = []
        self.arrived = asyncio.Event()
        self.slots = asyncio.Semaphore(settings.GROUP_COMMIT_CONCURRENCY)
        self.max_batch = settings.GROUP_COMMIT_MAX_BATCH
        self.max_wait = settings.GROUP_COMMIT_MAX_WAIT_MS / 1000
        self.flushes: set[asyncio.Task] = set()
        self.runner = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def submit(self, user_id: int, action: ScoreAction) -> Credit:
        future = asyncio.get_running_loop().create_future()
        self.queue.append(Pending(user_id, action, future))
        self.arrived.set()
        return await future

    async def submit_many(self, items: list[tuple[int, ScoreAction]]) -> list[Credit]:
        """Credit a trusted batch in one statement (the batch endpoint)."""
        pending = [
            Pending(user_id, action, asyncio.get_running_loop().create_future()) for user_id, action in items
        ]
        async with self.slots:
            await self._commit(pending)
        return [item.future.result() for item in pending]

    async def _run(self) -> None:
        while True:
            await self.arrived.wait()
            await self.slots.acquire()
            if len(self.queue) < self.max_batch and self.max_wait > 0:
                await asyncio.sleep(self.max_wait)
            batch, self.queue = self.queue[: self.max_batch], self.queue[self.max_batch :]
            if not self.queue:
                self.arrived.clear()
            if not batch:
                self.slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self.flushes.add(task)
            task.add_done_callback(self.flushes.discard)

    async def _flush(self, batch: list[Pending]) -> None:
        try:
            await self._commit(batch)
        finally:
            self.slots.release()

    async def _commit(self, batch: list[Pending]) -> None:
        first: dict[str, Pending] = {}
        for item in batch:
            first.setdefault(item.action.action_id, item)
        unique = list(first.values())
        try:
            credits = await self._credit_together(unique)
        except Exception as error:
            if database_unavailable(error):
                # No database: retrying one by one would make each wait for the pool again.
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                return
            logger.warning(
                "group commit of %d actions failed; retrying one by one", len(unique), exc_info=True
            )
            credits = None
        if credits is None:
            for item in unique:
                try:
                    _resolve(item, await self._credit_alone(item))
                except Exception as error:  # this action's own failure, reported to its caller
                    if not item.future.done():
                        item.future.set_exception(error)
        else:
            for item, credit in zip(unique, credits, strict=True):
                _resolve(item, credit)
        for item in batch:
            # Repeats of an action_id inside the batch are replays of the first one.
            if item is not first[item.action.action_id]:
                _resolve(item, Credit(None, None))

    async def _credit_together(self, unique: list[Pending]) -> list[Credit]:
        params = {
            "user_ids": [item.user_id for item in unique],
            "action_ids": [item.action.action_id for item in unique],
            "action_types": [item.action.action_type for item in unique],
            "points": [item.action.points for item in unique],
            "request_hashes": [item.action.digest() for item in unique],
            "client_ips": [item.action.client_ip for item in unique],
        }
        async with self.pool.connection() as connection:
            started = time.perf_counter()
            cursor = await connection.execute(BATCH_CREDIT, params)
            rows = await cursor.fetchall()
            metrics.GROUP_COMMIT_QUERY.observe(time.perf_counter() - started)
        return batch_credits(unique, rows)

    async def _credit_alone(self, item: Pending) -> Credit:
        async with self.pool.connection() as connection:
            started = time.perf_counter()
            cursor = await connection.execute(POSTGRES_CREDIT, credit_params(item.user_id, item.action))
            row = await cursor.fetchone()
            metrics.GROUP_COMMIT_ALONE_QUERY.observe(time.perf_counter() - started)
        return Credit(*row) if row else Credit(None, None)

    async def aclose(self) -> None:
        self.runner.cancel()
        for task in list(self.flushes):
            await asyncio.gather(task, return_exceptions=True)


def _resolve(item: Pending, credit: Credit) -> None:
    if not item.future.done():
        item.future.set_result(credit)
