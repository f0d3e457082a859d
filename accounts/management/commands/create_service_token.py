from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import ServiceAccount
from accounts.services import service_account_create, service_token_create
from scoreboard_project.errors import ApiError


class Command(BaseCommand):
    help = "Print a new batch-scope token for a service account, creating the account if needed."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--description", default="")

    def handle(self, *args, name, description, **options):
        try:
            with transaction.atomic():
                account = ServiceAccount.objects.select_related("user").filter(name=name).first()
                if account is None:
                    account = service_account_create(name=name, description=description)
                    self.stderr.write(f"Created service account {name}.")
                token = service_token_create(account=account)
        except ApiError as error:
            raise CommandError(error.message) from None
        self.stdout.write(token)
