"""Seed the benchmark database: N players with a score each, live sessions and tokens.

Run by bench/run.py with the bench environment; writes the players' access tokens and ids
and a service account's token into the output folder.
"""

import os
import random
import sys
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scoreboard_project.settings")

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from accounts.models import LoginSession, User  # noqa: E402
from accounts.services import service_account_create, service_token_create  # noqa: E402
from accounts.sessions import session_cache_key  # noqa: E402
from leaderboard.ranking import NAMES_KEY  # noqa: E402
from leaderboard.services import leaderboard_rebuild  # noqa: E402
from scoreboard_project.redis import redis_client  # noqa: E402
from scores.models import Score, ScoreHistory  # noqa: E402

CHUNK = 2000


def main(players: int, out: Path) -> None:
    rng = random.Random(7)
    now = timezone.now()
    expires = now + timedelta(hours=6)
    users = [User(username=f"bench_{number:06d}", password="!") for number in range(players)]
    User.objects.bulk_create(users, batch_size=CHUNK)
    users = list(User.objects.filter(username__startswith="bench_").order_by("id"))
    sessions = [
        LoginSession(id=uuid.uuid4(), user=user, refresh_jti="", expires_at=expires) for user in users
    ]
    LoginSession.objects.bulk_create(sessions, batch_size=CHUNK)
    scores, history = [], []
    for user in users:
        points = rng.randint(1, 5000)
        at = now - timedelta(seconds=rng.randint(1, 86400))
        scores.append(Score(user=user, total_score=points, updated_at=at))
        history.append(
            ScoreHistory(
                user=user,
                action_id=str(uuid.uuid4()),
                action_type="quest",
                points=points,
                request_hash="seed",
                created_at=at,
            )
        )
    Score.objects.bulk_create(scores, batch_size=CHUNK)
    ScoreHistory.objects.bulk_create(history, batch_size=CHUNK)
    leaderboard_rebuild()
    client = redis_client()
    tokens = []
    with client.pipeline(transaction=False) as pipe:
        for user, session in zip(users, sessions, strict=True):
            token = AccessToken()
            token.set_exp(lifetime=timedelta(hours=6))
            token["user_id"] = user.id
            token["sid"] = str(session.id)
            tokens.append(str(token))
            pipe.set(session_cache_key(str(session.id)), str(user.id), ex=6 * 3600)
            pipe.hset(NAMES_KEY, str(user.id), user.username)
        pipe.execute()
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokens.txt").write_text("\n".join(tokens) + "\n")
    (out / "user_ids.txt").write_text("\n".join(str(user.id) for user in users) + "\n")
    account = service_account_create(name="bench-server")
    (out / "service_token.txt").write_text(service_token_create(account=account) + "\n")
    print(f"seeded {len(users)} players, ids {users[0].id}..{users[-1].id}")


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
