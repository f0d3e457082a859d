import random
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from scores.models import ActionType
from scores.services import score_submit_sync
from scores.validation import ScoreAction

DEMO_PASSWORD = "demo-password-2026"


class Command(BaseCommand):
    help = "Create demo players with score histories (through the score service)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=50)
        parser.add_argument("--actions", type=int, default=5, help="actions per player (at most)")
        parser.add_argument("--prefix", default="player")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--if-empty", action="store_true", help="do nothing if players exist")

    def handle(self, *args, users, actions, prefix, seed, if_empty, **options):
        if users < 0 or actions < 0:
            raise CommandError("--users and --actions must not be negative")
        if if_empty and User.objects.filter(is_staff=False).exists():
            self.stdout.write("Players exist already; nothing seeded.")
            return
        types = list(ActionType.objects.filter(enabled=True))
        if not types:
            raise CommandError("No enabled action types; create some in the admin first.")
        rng = random.Random(seed)
        existing = set(
            User.objects.filter(username__startswith=f"{prefix}_").values_list("username", flat=True)
        )
        names = [f"{prefix}_{number:05d}" for number in range(1, users + 1)]
        new = [User(username=name) for name in names if name not in existing]
        for user in new:
            user.set_unusable_password()
        with transaction.atomic():
            User.objects.bulk_create(new, batch_size=1000)
        created = list(User.objects.filter(username__in=[user.username for user in new]))
        credited = 0
        for position, user in enumerate(created, start=1):
            for _ in range(rng.randint(1, max(1, actions))):
                kind = rng.choice(types)
                action = ScoreAction(
                    action_id=str(uuid.uuid4()),  # never a repeat of an earlier run's
                    action_type=kind.name,
                    points=rng.randint(kind.min_points, kind.max_points),
                )
                score_submit_sync(user_id=user.id, action=action)
                credited += 1
            if position % 1000 == 0:
                self.stdout.write(f"  {position}/{len(created)} players seeded")
        demo, made = User.objects.get_or_create(username="demo")
        if made:
            demo.set_password(DEMO_PASSWORD)
            demo.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(created)} players with {credited} actions "
                f"({len(existing)} existed). Sign in as demo / {DEMO_PASSWORD}."
            )
        )
