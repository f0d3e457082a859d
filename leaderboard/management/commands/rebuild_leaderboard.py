from django.core.management.base import BaseCommand

from leaderboard.services import leaderboard_rebuild
from scoreboard_project.redis import redis_client


class Command(BaseCommand):
    help = "Recreate the Redis ranking index from the database (safe to run any time)."

    def add_arguments(self, parser):
        parser.add_argument("--board", default=None, help="board name (default LEADERBOARD_NAME)")

    def handle(self, *args, board, **options):
        if redis_client() is None:
            self.stdout.write("No REDIS_URL: the scoreboard is read from the database; nothing to rebuild.")
            return
        count = leaderboard_rebuild(board=board)
        self.stdout.write(self.style.SUCCESS(f"Ranking index rebuilt: {count} ranked players."))
