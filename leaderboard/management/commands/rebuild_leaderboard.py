from django.core.management.base import BaseCommand

from leaderboard.board_services import boards_rebuild
from leaderboard.services import leaderboard_rebuild
from scoreboard_project.redis import redis_client


class Command(BaseCommand):
    help = (
        "Recreate the Redis ranking indexes from the database: the global board's, and every "
        "enabled board's current and previous period from the ledger (safe to run any time)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--board",
            action="append",
            default=None,
            help="only this board (a code; repeat for more); default: every enabled board",
        )

    def handle(self, *args, board, **options):
        if redis_client() is None:
            self.stdout.write("No REDIS_URL: the boards are read from the database; nothing to rebuild.")
            return
        if not board or "global" in board:
            count = leaderboard_rebuild()
            self.stdout.write(self.style.SUCCESS(f"Ranking index rebuilt: {count} ranked players."))
        for (code, period), size in sorted(boards_rebuild(codes=board).items()):
            self.stdout.write(self.style.SUCCESS(f"Board {code} period {period} rebuilt: {size} players."))
