from celery import shared_task

from leaderboard import board_services


@shared_task(name="leaderboard.tasks.boards_rebuild")
def boards_rebuild(codes: list[str] | None = None) -> int:
    """Rebuild boards' live periods from the ledger (after a board's definition changed)."""
    return len(board_services.boards_rebuild(codes=codes))


@shared_task(name="leaderboard.tasks.boards_archive_ended")
def boards_archive_ended() -> int:
    """Archive the final standings of periods that closed (celery beat, every minute). Not
    required on time: reading a closed period archives it too."""
    return board_services.boards_archive_ended()
