from django.apps import AppConfig


class ScoreboardProjectConfig(AppConfig):
    """Process-wide wiring of observability: ORM query timing and Celery task outcomes."""

    name = "scoreboard_project"

    def ready(self):
        from celery.signals import task_failure, task_retry, task_success
        from django.db.backends.signals import connection_created

        from scoreboard_project import metrics

        connection_created.connect(metrics.install_query_timer, weak=False)
        task_success.connect(metrics.task_succeeded, weak=False)
        task_failure.connect(metrics.task_failed, weak=False)
        task_retry.connect(metrics.task_retried, weak=False)
