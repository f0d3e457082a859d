"""The transactional outbox: messages commit with their work, publishing never holds up the
committer, and a message delivered twice takes effect once. The broker-outage test runs a
real Celery worker against a disposable redis-server that it kills and restarts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from scoreboard_project.celery import app
from scoreboard_project.tests.faults import RedisServer
from scores.models import OutboxMessage, ProcessedTask
from scores.outbox import outbox_enqueue, outbox_relay, publisher
from scores.tests import outbox_tasks  # noqa: F401  registers the test task

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "scores.tests.outbox_record"
ROOT = Path(__file__).resolve().parents[2]


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@contextlib.contextmanager
def celery_conf(**values):
    """Celery's conf is not monkeypatch-friendly: set and restore by assignment."""
    saved = {name: app.conf[name] for name in values}
    app.conf.update(values)
    try:
        yield
    finally:
        app.conf.update(saved)


@pytest.fixture
def eager():
    with celery_conf(task_always_eager=True):
        yield


def test_outbox_enqueue_needs_a_transaction():
    with pytest.raises(RuntimeError):
        outbox_enqueue(TASK, {"path": "/dev/null"})


def test_an_eager_message_runs_after_the_commit_and_never_after_a_rollback(eager, tmp_path):
    effects = tmp_path / "effects"
    with transaction.atomic():
        kept = outbox_enqueue(TASK, {"path": str(effects)})
        assert lines(effects) == []  # not before the commit
    assert lines(effects) == [str(kept)]
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        outbox_enqueue(TASK, {"path": str(effects)})
        raise ZeroDivisionError
    assert lines(effects) == [str(kept)]
    assert list(OutboxMessage.objects.values_list("id", flat=True)) == [kept]
    assert OutboxMessage.objects.get(id=kept).sent_at is not None


def test_a_failed_task_stays_pending_for_the_relay_and_runs_once(eager, tmp_path):
    effects = tmp_path / "effects"
    with transaction.atomic():
        message_id = outbox_enqueue(TASK, {"path": str(effects), "fail": True})
    message = OutboxMessage.objects.get(id=message_id)
    assert message.sent_at is None and message.attempts == 1 and "asked to fail" in message.last_error
    OutboxMessage.objects.filter(id=message_id).update(
        kwargs={"path": str(effects)}, available_at=message.created_at
    )
    call_command("relay_outbox", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert lines(effects) == [str(message_id)]
    # Published again (a relay that died before marking it sent): no second effect.
    OutboxMessage.objects.filter(id=message_id).update(sent_at=None)
    assert outbox_relay().sent == 1
    assert lines(effects) == [str(message_id)]
    assert lines(Path(f"{effects}.deliveries")) == [str(message_id)] * 3
    assert ProcessedTask.objects.filter(task_id=str(message_id)).count() == 1


@pytest.fixture
def broker():
    """A disposable redis-server as this process's Celery broker (not eager)."""
    server = RedisServer().start()
    conf = {
        "task_always_eager": False,
        "broker_url": server.url(),
        "broker_connection_timeout": 0.5,
        "broker_transport_options": {"socket_connect_timeout": 0.5},
    }
    with celery_conf(**conf):
        app._after_fork()  # forget the connection and producer pools of the former broker
        try:
            yield server
        finally:
            publisher.join()
            app._after_fork()
            server.stop()


def start_worker(broker_url: str, log: Path) -> subprocess.Popen:
    params = connection.settings_dict
    database = f"postgresql://{params['USER']}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"
    env = {
        **os.environ,
        "DB_CONNECTION_STRING": database,
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": "",
        "DEBUG": "true",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "scoreboard_project",
            "worker",
            "--pool",
            "solo",
            "--include",
            "scores.tests.outbox_tasks",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_for(predicate, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.postgres
def test_a_broker_outage_loses_nothing_and_runs_every_task_once(broker, tmp_path):
    effects = tmp_path / "effects"
    log = tmp_path / "worker.log"
    worker = start_worker(broker.url(), log)
    try:
        with transaction.atomic():
            first = outbox_enqueue(TASK, {"path": str(effects)})
        assert wait_for(lambda: lines(effects) == [str(first)]), (
            list(OutboxMessage.objects.values_list("sent_at", "last_error")),
            log.read_text()[-1500:],
        )

        broker.stop()
        durations, queued = [], []
        for _ in range(20):
            started = time.monotonic()
            with transaction.atomic():
                queued.append(outbox_enqueue(TASK, {"path": str(effects)}))
            durations.append(time.monotonic() - started)
        # The committer never waited on the dead broker (the publisher thread did).
        assert max(durations) < 0.1, durations
        publisher.join()
        assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 20
        assert OutboxMessage.objects.exclude(last_error="").count() >= 1

        broker.start()
        OutboxMessage.objects.update(available_at=OutboxMessage.objects.get(id=first).created_at)
        assert wait_for(lambda: outbox_relay().pending == 0, timeout=20)
        # A relay that crashed between publishing and marking: five messages go out twice.
        OutboxMessage.objects.filter(id__in=queued[:5]).update(sent_at=None)
        assert outbox_relay().sent == 5

        everything = {str(first), *(str(message_id) for message_id in queued)}
        assert wait_for(lambda: len(lines(Path(f"{effects}.deliveries"))) >= 26), log.read_text()[-3000:]
        effect_counts = Counter(lines(effects))
        assert set(effect_counts) == everything
        assert set(effect_counts.values()) == {1}, effect_counts  # every task took effect once
        assert Counter(lines(Path(f"{effects}.deliveries")))[str(queued[0])] == 2  # delivered twice
        assert ProcessedTask.objects.count() == 21
    finally:
        worker.terminate()
        worker.wait(20)


def test_relay_outbox_resends_what_a_broker_lost(eager, tmp_path):
    effects = tmp_path / "effects"
    with transaction.atomic():
        message_id = outbox_enqueue(TASK, {"path": str(effects)})
    out = StringIO()
    call_command("relay_outbox", "--resend-since", "2000-01-01T00:00:00Z", stdout=out)
    assert "1 messages sent since 2000-01-01T00:00:00+00:00 marked for sending again." in out.getvalue()
    assert "Published 1 messages; 0 still pending." in out.getvalue()
    assert lines(effects) == [str(message_id)]  # delivered twice, took effect once
    assert lines(Path(f"{effects}.deliveries")) == [str(message_id)] * 2


def test_inline_tasks_run_in_a_fresh_process_that_never_imported_them(tmp_path):
    """The embedded default runs outbox tasks inline; a web process has not imported the
    task modules (autodiscovery runs in workers), and must still find the task."""
    import subprocess
    import sys

    from django.conf import settings as django_settings

    env = {
        "PATH": "/usr/bin:/bin",
        "DB_CONNECTION_STRING": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "DEBUG": "false",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "JWT_SECRET": django_settings.JWT_SECRET,
        "SCOREBOARD_ENV_FILE": "/nonexistent",
    }
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command; call_command('migrate', verbosity=0)\n"
        "import sys; assert 'antifraud.tasks' not in sys.modules\n"
        "from django.db import transaction\n"
        "from scores.outbox import outbox_enqueue\n"
        "from scores.models import OutboxMessage\n"
        "with transaction.atomic():\n"
        "    outbox_enqueue('antifraud.tasks.analyse_player', {'user_id': 1})\n"
        "(message,) = OutboxMessage.objects.all()\n"
        "assert message.sent_at is not None, message.last_error\n"
        "print('ran inline')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=django_settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "scoreboard_project.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "ran inline" in done.stdout, done.stderr[-3000:]
