"""manage.py relay_outbox: publish the pending outbox messages now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scores.outbox import outbox_relay


class Command(BaseCommand):
    help = (
        "Publish the outbox messages still pending (the broker was down when they committed). "
        "Exit status 1 when the broker refused and messages remain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="messages per batch")

    def handle(self, *args, limit: int, **options):
        result = outbox_relay(limit=limit)
        self.stdout.write(f"Published {result.sent} messages; {result.pending} still pending.")
        if result.failed:
            raise CommandError("the broker refused a message; the rest stays pending", returncode=1)
