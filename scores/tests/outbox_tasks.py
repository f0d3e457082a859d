"""A small task for the outbox tests (a worker loads it with `--include`)."""

from celery import shared_task

from scores.outbox import exactly_once


@shared_task(bind=True, name="scores.tests.outbox_record")
def outbox_record(self, *, path: str, fail: bool = False) -> None:
    """Append the task id to `path`.deliveries on every delivery, and to `path` once per id."""
    with open(f"{path}.deliveries", "a") as deliveries:
        deliveries.write(f"{self.request.id}\n")
    _record(self, path=path, fail=fail)


@exactly_once
def _record(task, *, path: str, fail: bool) -> None:
    if fail:
        raise RuntimeError("this task was asked to fail")
    with open(path, "a") as effects:
        effects.write(f"{task.request.id}\n")
