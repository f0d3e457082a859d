"""manage.py archive_history --older-than DAYS: move old history rows to the archive table."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scores.consistency import history_archive


class Command(BaseCommand):
    help = (
        "Move score_history rows older than DAYS days into score_history_archive, in batches, "
        "without changing any total (reconcile_scores counts both tables). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, older_than: int, batch_size: int, **options):
        if older_than < 0 or batch_size < 1:
            raise CommandError("--older-than must be 0 or more days and --batch-size at least 1")
        cutoff = timezone.now() - timedelta(days=older_than)
        self.stdout.write(f"Archiving history rows created before {cutoff.isoformat()}...")
        try:
            result = history_archive(
                older_than=cutoff, batch_size=batch_size, progress=lambda line: self.stdout.write(line)
            )
        except Exception as error:
            raise CommandError(f"archive failed: {type(error).__name__}: {error}", returncode=2) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Archived {result.moved} rows in {result.batches} batches; score_history now holds "
                f"{result.live_rows} rows, score_history_archive {result.archived_rows}. Totals unchanged."
            )
        )
