"""manage.py relay_outbox: publish the pending outbox messages now."""

from __future__ import annotations

from datetime import UTC

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from scores.models import OutboxMessage
from scores.outbox import outbox_relay


class Command(BaseCommand):
    help = (
        "Publish the outbox messages still pending (the broker was down when they committed). "
        "Exit status 1 when the broker refused and messages remain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="messages per batch")
        parser.add_argument(
            "--resend-since",
            metavar="ISO-8601",
            help="publish again the messages sent since this time (a broker that lost its queue); "
            "consumers skip the task ids they already processed",
        )

    def handle(self, *args, limit: int, resend_since: str | None = None, **options):
        if resend_since:
            since = parse_datetime(resend_since)
            if since is None:
                raise CommandError("--resend-since takes an ISO-8601 time, e.g. 2026-11-30T12:00:00Z")
            if timezone.is_naive(since):
                since = timezone.make_aware(since, UTC)
            count = OutboxMessage.objects.filter(sent_at__gte=since).update(
                sent_at=None, available_at=timezone.now()
            )
            self.stdout.write(f"{count} messages sent since {since.isoformat()} marked for sending again.")
        result = outbox_relay(limit=limit)
        self.stdout.write(f"Published {result.sent} messages; {result.pending} still pending.")
        if result.failed:
            raise CommandError("the broker refused a message; the rest stays pending", returncode=1)
