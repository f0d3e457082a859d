from django.core.management.base import BaseCommand

from antifraud.patterns import analyse


class Command(BaseCommand):
    help = "Run the pattern rules (scripted timing, identical sequences, rate-limit edge, IP farms) now."

    def add_arguments(self, parser):
        parser.add_argument(
            "--window", type=int, help="Seconds of history to analyse (default PATTERN_WINDOW)."
        )

    def handle(self, *args, window=None, **options):
        raised = analyse(window=window)
        for rule, count in raised.items():
            self.stdout.write(f"{rule:<22} {count} new flag(s)")
        self.stdout.write(self.style.SUCCESS(f"{sum(raised.values())} new flag(s) in all"))
