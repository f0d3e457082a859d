from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.services import session_open


class Command(BaseCommand):
    help = "Print an access token for USERNAME (a new login session), for scripts and tests."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--refresh", action="store_true", help="print the refresh token too")

    def handle(self, *args, username, refresh, **options):
        user = User.objects.filter(username__iexact=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        with transaction.atomic():
            tokens = session_open(user=user)
        self.stdout.write(tokens["access"])
        if refresh:
            self.stdout.write(tokens["refresh"])
