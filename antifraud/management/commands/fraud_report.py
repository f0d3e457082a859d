from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db.models import Count
from django.utils import timezone

from antifraud.models import Ban, Decision, Flag, HeldAction, Review
from antifraud.rules import rule_states


class Command(BaseCommand):
    help = "Summarise anti-fraud activity: open flags, the rules that fire most, held actions, bans."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help="Period for the per-rule counts (default 7).")
        parser.add_argument("--limit", type=int, default=20, help="Open flags listed (default 20).")

    def handle(self, *args, days, limit, **options):
        since = timezone.now() - timedelta(days=days)
        states = rule_states()
        self.stdout.write(self.style.MIGRATE_HEADING("Rules"))
        for code, state in states.items():
            self.stdout.write(f"  {code:<22} {state.mode:<8} threshold {state.threshold:g}")

        self.stdout.write(self.style.MIGRATE_HEADING(f"Flags and decisions per rule, last {days} day(s)"))
        flags = dict(Flag.objects.filter(created_at__gte=since).values_list("rule").annotate(n=Count("id")))
        opened = dict(Flag.objects.filter(status=Flag.OPEN).values_list("rule").annotate(n=Count("id")))
        decisions = dict(
            Decision.objects.filter(created_at__gte=since).values_list("rule").annotate(n=Count("id"))
        )
        for code in sorted(set(flags) | set(decisions) | set(opened), key=lambda c: -flags.get(c, 0)):
            self.stdout.write(
                f"  {code:<22} {flags.get(code, 0):>6} flag(s) {opened.get(code, 0):>6} open "
                f"{decisions.get(code, 0):>8} decision(s)"
            )

        open_flags = Flag.objects.filter(status=Flag.OPEN).select_related("user").order_by("-created_at")
        total_open = open_flags.count()
        self.stdout.write(
            self.style.MIGRATE_HEADING(f"Open flags: {total_open} (newest {min(limit, total_open)})")
        )
        for flag in open_flags[:limit]:
            who = flag.user.username if flag.user else flag.client_ip
            self.stdout.write(
                f"  #{flag.pk:<6} {flag.created_at:%Y-%m-%d %H:%M} {flag.rule:<20} {flag.severity:<6} {who}: {flag.summary}"
            )

        held = HeldAction.objects.filter(status=HeldAction.HELD).count()
        reviews = Review.objects.filter(closed_at__isnull=True).count()
        bans = Ban.objects.filter(lifted_at__isnull=True, ends_at__gt=timezone.now()).count()
        self.stdout.write(self.style.MIGRATE_HEADING("Queue"))
        self.stdout.write(f"  players under review: {reviews}; actions held: {held}; bans in force: {bans}")
        self.stdout.write(self.style.SUCCESS("Done."))
