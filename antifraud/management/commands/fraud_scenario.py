from django.core.management.base import BaseCommand

from antifraud.scenario import Options, report_lines, run_scenario


class Command(BaseCommand):
    help = (
        "Replay a mixed traffic scenario (honest players, scripted bots, a burst cheater, an IP farm) "
        "through the real API and print, per rule, the cheaters caught and the honest players flagged."
    )

    def add_arguments(self, parser):
        parser.add_argument("--honest", type=int, default=12)
        parser.add_argument("--bots", type=int, default=3)
        parser.add_argument("--farm", type=int, default=6)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--keep", action="store_true", help="Keep the scenario's accounts and flags.")

    def handle(self, *args, honest, bots, farm, seed, keep, **options):
        self.stdout.write("Playing the scenario (about half a minute)...")
        report = run_scenario(Options(honest=honest, bots=bots, farm=farm, seed=seed), keep=keep)
        for line in report_lines(report):
            self.stdout.write(line)
        if report["cheaters_caught"] < report["cheaters"] or report["honest_flagged"]:
            self.stdout.write(self.style.WARNING("Some cheaters were missed or honest players flagged."))
