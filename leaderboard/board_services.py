"""Writes to the boards other than through credits: rebuilds from the ledger, one player's
entries after a ban or revert, and the archive of closed periods."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import WatchError

from leaderboard.board_reads import board_pages_invalidate
from leaderboard.board_selectors import (
    ARCHIVE_GRACE,
    Standing,
    board_fold,
    board_standings,
    ledger_rows,
)
from leaderboard.boards import (
    BoardDef,
    boards_channel,
    boards_enabled,
    boards_forget,
    expire_at,
    member,
    member_user,
    period_index,
    player_entry,
    player_entry_text,
    player_key,
)
from leaderboard.events import board_changed_here
from leaderboard.models import Board, BoardArchive, BoardStanding
from leaderboard.periods import Period, period_at, period_before, period_parse
from leaderboard.selectors import micros, moment_of_micros, ranked_scores
from scoreboard_project.errors import InvalidAction
from scoreboard_project.redis import RedisError, redis_client
from scores.selectors import ranked_users

logger = logging.getLogger(__name__)
CHUNK = 5000


def live_periods(board: BoardDef, now: datetime | None = None) -> list[Period]:
    """The periods a board keeps in Redis: the current one and the one before it."""
    now = now or timezone.now()
    current = period_at(board, now)
    if current is None:  # an event before or after its bounds
        return [period_parse(board, "event")]
    previous = period_before(board, current)
    return [current] + ([previous] if previous is not None else [])


def board_rebuild(*, board: BoardDef, period: Period, players: bool = True) -> int:
    """Recreate a board-period's index from the ledger and swap it in atomically; return its
    size. With `players` (the board's current period), each player's entry in their player
    hash is written first; players credited while the ledger was read are set again after
    the swap, the snapshot's member removed with the one their hash names."""
    client = redis_client()
    standings = board_standings(board, period)
    if client is None:
        return len(standings)
    started = timezone.now() - timedelta(seconds=5)
    index = period_index(board.code, period.key)
    index_tmp = f"{index}:rebuild:{uuid.uuid4().hex}"
    for start in range(0, len(standings), CHUNK):
        chunk = standings[start : start + CHUNK]
        with client.pipeline(transaction=False) as pipe:
            pipe.zadd(index_tmp, {member(s.reached_micros, s.user_id): board.sign * s.value for s in chunk})
            for s in chunk if players else ():
                text = member(s.reached_micros, s.user_id)
                pipe.hset(
                    player_key(s.user_id),
                    board.code,
                    player_entry_text(period.key, text, board.sign * s.value),
                )
            pipe.execute()
    expires = expire_at(period)
    with client.pipeline(transaction=True) as pipe:
        if standings:
            pipe.rename(index_tmp, index)
            if expires:
                pipe.expireat(index, expires)
        else:
            pipe.delete(index)
        pipe.publish(boards_channel(), board.code)
        pipe.execute()
    late = _credited_since(board, period, started)
    if late and players:
        snapshot = {s.user_id: member(s.reached_micros, s.user_id) for s in standings if s.user_id in late}
        _entries_set(client, board, period, late, stale=snapshot)
    board_pages_invalidate([board.code])
    board_changed_here()
    return len(standings)


def _credited_since(board: BoardDef, period: Period, since: datetime) -> set[int]:
    from scores.models import Score, ScoreHistory

    if board.is_global:
        return set(Score.objects.filter(updated_at__gte=since).values_list("user_id", flat=True))
    return set(ScoreHistory.objects.filter(created_at__gte=since).values_list("user_id", flat=True))


def _player_standing(board: BoardDef, period: Period, user_id: int) -> Standing | None:
    """One player's entry on a board-period, from the database (None: not ranked there)."""
    if board.is_global:
        found = ranked_scores().filter(user_id=user_id).values_list("total_score", "updated_at").first()
        return Standing(user_id, found[0], micros(found[1])) if found else None
    if not ranked_users().filter(pk=user_id).exists():
        return None
    folded = board_fold(board, ledger_rows(board, period, user_ids=[user_id]))
    if user_id not in folded:
        return None
    value, reached = folded[user_id]
    return Standing(user_id, value, micros(reached))


def _entries_set(
    client, board: BoardDef, period: Period, user_ids: set[int], stale: dict[int, str] | None = None
) -> None:
    """Make these players' entries on a board's current period equal the database's (and
    remove `stale` members of theirs that their hash no longer names)."""
    index = period_index(board.code, period.key)
    expires = expire_at(period)
    for user_id in sorted(user_ids):
        standing = _player_standing(board, period, user_id)
        holder = player_key(user_id)
        with client.pipeline(transaction=True) as pipe:
            pipe.watch(holder)
            held = player_entry(pipe.hget(holder, board.code), period.key)
            pipe.multi()
            gone = {text for text in ((held or (None,))[0], (stale or {}).get(user_id)) if text}
            if gone:
                pipe.zrem(index, *gone)
            if standing is None:
                if held is not None:
                    pipe.hdel(holder, board.code)
            else:
                text = member(standing.reached_micros, user_id)
                stored = board.sign * standing.value
                pipe.zadd(index, {text: stored})
                pipe.hset(holder, board.code, player_entry_text(period.key, text, stored))
                if expires:
                    pipe.expireat(index, expires)
            try:
                pipe.execute()
            except WatchError:  # a credit moved the entry meanwhile; read it again
                logger.info("board %s entry of %s moved during a sync; retried", board.code, user_id)
                _entries_set(client, board, period, {user_id}, stale)


def board_user_sync(*, user_id: int) -> None:
    """Make every board's live periods agree with the database for one player (a ban, an
    unban, a deactivation, a revert)."""
    client = redis_client()
    if client is None:
        return
    changed = []
    try:
        for board in boards_enabled().values():
            # The current period; a closed one is read from the ledger's archive, which
            # leaves out banned and inactive players.
            _entries_set(client, board, live_periods(board)[0], {user_id})
            changed.append(board.code)
        if changed:
            client.publish(boards_channel(), " ".join(changed))
            board_pages_invalidate(changed)
    except RedisError:
        logger.error("redis unreachable; boards of user %s not synced; run rebuild_leaderboard", user_id)


def boards_rebuild(*, codes: list[str] | None = None) -> dict[tuple[str, str], int]:
    """Rebuild the live periods of every enabled board (or of `codes`) from the ledger."""
    boards_forget()
    sizes = {}
    for board in boards_enabled().values():
        if codes and board.code not in codes:
            continue
        for position, period in enumerate(live_periods(board)):
            # Player hashes name entries of the current period (the first) only.
            sizes[(board.code, period.key)] = board_rebuild(board=board, period=period, players=position == 0)
    return sizes


@dataclass(frozen=True, slots=True)
class BoardDifference:
    board: str
    period: str
    user_id: int
    index: int | None
    database: int | None


def boards_check() -> list[BoardDifference]:
    """Compare every enabled board's live periods in Redis with the ledger."""
    client = redis_client()
    if client is None:
        return []
    found = []
    for board in boards_enabled().values():
        for period in live_periods(board):
            index: dict[int, int] = {}
            twice: set[int] = set()  # a player with two entries is a difference too
            for text, score in client.zrange(period_index(board.code, period.key), 0, -1, withscores=True):
                user_id = member_user(text.decode())
                if user_id in index:
                    twice.add(user_id)
                index[user_id] = board.sign * int(score)
            database = {standing.user_id: standing.value for standing in board_standings(board, period)}
            found += [
                BoardDifference(board.code, period.key, user_id, index.get(user_id), database.get(user_id))
                for user_id in sorted(set(index) | set(database))
                if index.get(user_id) != database.get(user_id) or user_id in twice
            ]
    return found


def board_archive(*, board: BoardDef, period: Period) -> list[Standing]:
    """A closed period's final standings: archived from the ledger on first use, then read
    from the archive."""
    row = Board.objects.filter(code=board.code).only("id").first()
    if row is None:
        return board_standings(board, period)
    if not BoardArchive.objects.filter(board=row, period=period.key).exists():
        standings = board_standings(board, period)
        ranks = standing_ranks(board, standings)
        try:
            with transaction.atomic():
                BoardArchive.objects.create(board=row, period=period.key, players=len(standings))
                BoardStanding.objects.bulk_create(
                    [
                        BoardStanding(
                            board=row,
                            period=period.key,
                            position=position + 1,
                            rank=ranks[position],
                            user_id=standing.user_id,
                            value=standing.value,
                            reached_at=moment_of_micros(standing.reached_micros),
                        )
                        for position, standing in enumerate(standings)
                    ],
                    batch_size=CHUNK,
                )
        except IntegrityError:  # another process archived it first
            pass
        else:
            logger.info("board %s period %s archived (%d players)", board.code, period.key, len(standings))
            return standings
    rows = BoardStanding.objects.filter(board=row, period=period.key).order_by("position")
    return [
        Standing(user_id, value, micros(reached))
        for user_id, value, reached in rows.values_list("user_id", "value", "reached_at").iterator(
            chunk_size=CHUNK
        )
    ]


def standing_ranks(board: BoardDef, standings: list[Standing]) -> list[int]:
    """The rank of each standing, in board order, by the board's tie policy."""
    ranks: list[int] = []
    for position, standing in enumerate(standings):
        shared = board.tie_policy == "shared" and position and standing.value == standings[position - 1].value
        ranks.append(ranks[-1] if shared else position + 1)
    return ranks


def boards_archive_ended(*, now: datetime | None = None) -> int:
    """Archive every enabled board's previous period once it has been over ARCHIVE_GRACE;
    returns how many were archived now. Nothing depends on this running on time: a read of
    a closed period archives it too."""
    now = now or timezone.now()
    archived = 0
    for board in boards_enabled().values():
        current = period_at(board, now)
        candidates = [period_before(board, current)] if current is not None else []
        if board.window == "event" and board.ends_at is not None and board.ends_at <= now:
            candidates = [period_parse(board, "event")]
        for period in candidates:
            if period is None or period.ends_at is None or period.ends_at + ARCHIVE_GRACE > now:
                continue
            if not BoardArchive.objects.filter(board__code=board.code, period=period.key).exists():
                board_archive(board=board, period=period)
                archived += 1
    return archived


def board_define(*, data: dict, instance: Board | None = None, by=None) -> Board:
    """Create or change a board; its live periods are rebuilt from the ledger after the
    commit (a task), since the change may count other actions or count them otherwise."""
    from antifraud.services import audit_record
    from scores.outbox import outbox_enqueue

    with transaction.atomic():
        before = None
        if instance is None:
            instance = Board(**data)
        else:
            before = {name: str(getattr(instance, name)) for name in data}
            for name, value in data.items():
                setattr(instance, name, value)
        try:
            instance.full_clean()
        except ValidationError as error:
            raise InvalidAction(
                "The board definition is invalid.",
                details={field: " ".join(messages) for field, messages in error.message_dict.items()},
            ) from None
        instance.save()
        audit_record(
            actor=by,
            action="board.create" if before is None else "board.change",
            target=f"board:{instance.code}",
            before=before or {},
            after={name: str(getattr(instance, name)) for name in data},
        )
        outbox_enqueue("leaderboard.tasks.boards_rebuild", {"codes": [instance.code]})
        transaction.on_commit(boards_forget)
    return instance
