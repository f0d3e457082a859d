"""manage.py reconcile_scores [--fix]: totals against history, the index against the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scores.consistency import index_check, totals_check, totals_fix

SHOWN = 50  # differences printed of each kind (all are counted)


class Command(BaseCommand):
    help = (
        "Verify that every total equals the sum of its accepted (not voided) history, live and "
        "archived, and that the Redis ranking index equals the database. Exit status 1 when "
        "differences remain, 2 when the check could not run. --fix recomputes the totals and "
        "rebuilds the index."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fix", action="store_true", help="recompute differing totals, rebuild the index"
        )
        parser.add_argument("--board", default=None, help="board name (default LEADERBOARD_NAME)")

    def handle(self, *args, fix: bool = False, board: str | None = None, **options):
        from leaderboard.board_services import boards_check, boards_rebuild
        from leaderboard.services import leaderboard_rebuild
        from scoreboard_project.redis import RedisError

        def progress(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            self.stdout.write("Checking totals against their accepted history...")
            report = totals_check(progress=progress)
            # Totals first: the index is then compared with the corrected database.
            fixed_totals = totals_fix(differences=report.totals) if fix and report.totals else 0
            self.stdout.write("Checking the ranking index against the database...")
            index_check(report=report, board=board)
            self.stdout.write("Checking every board's live periods against the ledger...")
            boards = boards_check()
        except RedisError as error:
            raise CommandError(f"Redis is unreachable: {error}", returncode=2) from error
        except Exception as error:
            raise CommandError(f"reconcile failed: {type(error).__name__}: {error}", returncode=2) from error

        self.stdout.write(
            f"Checked {report.players} players: {report.live_rows} history rows live, "
            f"{report.archived_rows} archived."
        )
        self._show_totals(report)
        self._show_index(report)
        self._show_boards(boards, report.index_checked)
        problems = bool(report.totals) or bool(report.index) or bool(boards)
        if not problems:
            self.stdout.write(
                self.style.SUCCESS(
                    "Consistent: every total equals its history; the indexes equal the database."
                )
            )
            return
        if not fix:
            raise CommandError(
                f"{len(report.totals)} totals, {len(report.index)} index entries and "
                f"{len(boards)} board entries differ; "
                "run with --fix to repair them.",
                returncode=1,
            )
        try:
            rebuilt = leaderboard_rebuild(board=board) if report.index_checked else None
            if boards:
                boards_rebuild(codes=sorted({difference.board for difference in boards}))
            again = totals_check()
            boards_again = []
            if report.index_checked:
                index_check(report=again, board=board)
                boards_again = boards_check()
        except Exception as error:
            raise CommandError(f"fix failed: {type(error).__name__}: {error}", returncode=2) from error
        self.stdout.write(
            f"Fixed: {fixed_totals} totals recomputed"
            + (f"; ranking index rebuilt ({rebuilt} players)." if rebuilt is not None else ".")
        )
        if again.totals or again.index or boards_again:
            raise CommandError(
                f"after the fix {len(again.totals)} totals, {len(again.index)} index entries and "
                f"{len(boards_again)} board entries still differ",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS("Consistent after the fix."))

    def _show_totals(self, report) -> None:
        if not report.totals:
            self.stdout.write("Totals: all equal their accepted history.")
            return
        self.stdout.write(
            self.style.WARNING(f"Totals: {len(report.totals)} differ from their accepted history:")
        )
        for difference in report.totals[:SHOWN]:
            total = "no score row" if difference.total is None else f"total {difference.total}"
            self.stdout.write(
                f"  user {difference.user_id}: {total}, history {difference.expected} "
                f"(live {difference.live} + archived {difference.archived})"
            )
        if len(report.totals) > SHOWN:
            self.stdout.write(f"  ... and {len(report.totals) - SHOWN} more")

    def _show_index(self, report) -> None:
        if not report.index_checked:
            self.stdout.write("Ranking index: no Redis configured, nothing to compare.")
            return
        if not report.index:
            self.stdout.write(f"Ranking index: equals the database ({report.index_size} players).")
            return
        self.stdout.write(self.style.WARNING(f"Ranking index: {len(report.index)} entries differ:"))
        for difference in report.index[:SHOWN]:
            index = "missing" if difference.index is None else difference.index
            database = "not ranked" if difference.database is None else difference.database
            self.stdout.write(f"  user {difference.user_id}: index {index}, database {database}")
        if len(report.index) > SHOWN:
            self.stdout.write(f"  ... and {len(report.index) - SHOWN} more")

    def _show_boards(self, boards, checked: bool) -> None:
        if not checked:
            return
        if not boards:
            self.stdout.write("Boards: every live period equals the ledger.")
            return
        self.stdout.write(self.style.WARNING(f"Boards: {len(boards)} entries differ from the ledger:"))
        for difference in boards[:SHOWN]:
            index = "missing" if difference.index is None else difference.index
            database = "not ranked" if difference.database is None else difference.database
            self.stdout.write(
                f"  board {difference.board} period {difference.period} user {difference.user_id}: "
                f"index {index}, ledger {database}"
            )
        if len(boards) > SHOWN:
            self.stdout.write(f"  ... and {len(boards) - SHOWN} more")
