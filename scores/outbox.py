"""Transactional outbox: Celery tasks that must not be lost when the broker is down.

`outbox_enqueue(task_name, kwargs)` writes an `OutboxMessage` row in the caller's transaction;
after the commit the message is published in the background (a request never waits on the
broker), or run inline when Celery is eager (the embedded default). Whatever was not
published is published later by the relay: the beat task `scores.tasks.outbox_relay` (every
`OUTBOX_RELAY_INTERVAL` seconds) and `manage.py relay_outbox`. Each message is published with
its row id as the Celery task id, and consumers wrapped in `exactly_once` record the ids they
processed in the same transaction as their work, so a message published twice (a relay that
crashed between publishing and marking it sent) takes effect once.
"""

from __future__ import annotations

import functools
import importlib
import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, connections, transaction
from django.utils import timezone

from scores.models import OutboxMessage, ProcessedTask

logger = logging.getLogger("scoreboard.outbox")

# Seconds before a message whose publishing failed is tried again, by attempt (then the last).
RETRY_BACKOFF = (1, 2, 5, 10, 30, 60)


def outbox_enqueue(task_name: str, kwargs: dict) -> uuid.UUID:
    """Record a task in the current transaction; it is published once the transaction commits.

    Must be called inside `transaction.atomic()`: the message commits or rolls back with the
    work it belongs to. `kwargs` must be JSON (ids, not model instances).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_enqueue must be called inside transaction.atomic()")
    message = OutboxMessage.objects.create(id=uuid.uuid4(), task_name=task_name, kwargs=kwargs)
    transaction.on_commit(functools.partial(_deliver_after_commit, message.id))
    return message.id


def _deliver_after_commit(message_id: uuid.UUID) -> None:
    if _eager():
        # The embedded default: no broker, tasks run inline, as Celery's eager mode does.
        outbox_publish(message_ids=[message_id])
    else:
        publisher.submit(message_id)


def _eager() -> bool:
    from scoreboard_project.celery import app

    return bool(app.conf.task_always_eager)


def _publish_one(message: OutboxMessage) -> None:
    from scoreboard_project.celery import app

    if _eager():
        # The task's module may not be imported yet in this process (a web process imports
        # tasks only as it needs them; autodiscovery runs in workers).
        importlib.import_module(message.task_name.rpartition(".")[0])
        app.tasks[message.task_name].apply(kwargs=message.kwargs, task_id=str(message.id), throw=True)
    else:
        # No retries here: a failed message stays pending and the relay tries it again.
        app.send_task(message.task_name, kwargs=message.kwargs, task_id=str(message.id), retry=False)


@dataclass(frozen=True, slots=True)
class RelayResult:
    sent: int
    failed: int
    pending: int


def outbox_publish(*, message_ids: list | None = None, limit: int = 500) -> RelayResult:
    """Publish pending messages (these ids, or the oldest due ones), mark them sent.

    Rows are locked while they are published (SKIP LOCKED on PostgreSQL: concurrent relays
    share the work). The first broker failure stops the run: the rest waits for the next one.
    """
    sent = failed = 0
    now = timezone.now()
    with transaction.atomic():
        due = OutboxMessage.objects.filter(sent_at__isnull=True)
        due = due.filter(id__in=message_ids) if message_ids is not None else due.filter(available_at__lte=now)
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        for message in due.order_by("created_at")[:limit]:
            try:
                _publish_one(message)
            except Exception as error:
                failed += 1
                message.attempts += 1
                message.last_error = f"{type(error).__name__}: {error}"[:2000]
                delay = RETRY_BACKOFF[min(message.attempts, len(RETRY_BACKOFF)) - 1]
                message.available_at = timezone.now() + timedelta(seconds=delay)
                message.save(update_fields=["attempts", "last_error", "available_at"])
                logger.warning("outbox message %s not published (%s); the relay retries", message.id, error)
                break
            message.sent_at = timezone.now()
            message.attempts += 1
            message.save(update_fields=["sent_at", "attempts"])
            sent += 1
    pending = OutboxMessage.objects.filter(sent_at__isnull=True).count()
    return RelayResult(sent, failed, pending)


def outbox_relay(*, limit: int = 500) -> RelayResult:
    """Publish every due message, batch after batch, until none is left or the broker fails."""
    total_sent = total_failed = 0
    while True:
        result = outbox_publish(limit=limit)
        total_sent += result.sent
        total_failed += result.failed
        if result.failed or result.sent < limit:
            return RelayResult(total_sent, total_failed, result.pending)


class Publisher:
    """One daemon thread per process publishing committed messages, so that the request
    that committed them never waits on the broker (a dead broker costs the thread
    `CELERY_BROKER_CONNECTION_TIMEOUT`, not the request)."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=10_000)
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, message_id: uuid.UUID) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
                self.thread.start()
        try:
            self.queue.put_nowait(message_id)
        except queue.Full:  # the relay publishes it later
            logger.warning("outbox publisher queue full; message %s left to the relay", message_id)

    def _run(self) -> None:
        while True:
            ids = [self.queue.get()]
            while len(ids) < 100:
                try:
                    ids.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                outbox_publish(message_ids=ids)
            except Exception:
                logger.exception("outbox publisher failed; the relay will publish these messages")
            finally:
                connections.close_all()
                for _ in ids:
                    self.queue.task_done()

    def join(self) -> None:
        """Wait until every submitted message was attempted (tests)."""
        self.queue.join()


publisher = Publisher()


def exactly_once(function):
    """For a task declared with `bind=True`: run it at most once per task id. The id is
    recorded in the same transaction as the task's own database work; a redelivered or
    republished message finds it and does nothing."""

    @functools.wraps(function)
    def run(task, *args, **kwargs):
        task_id = task.request.id
        if not task_id:
            return function(task, *args, **kwargs)
        with transaction.atomic():
            _, created = ProcessedTask.objects.get_or_create(
                task_id=task_id, defaults={"task_name": task.name}
            )
            if not created:
                logger.info("task %s %s already processed; skipped", task.name, task_id)
                return None
            return function(task, *args, **kwargs)

    return run
