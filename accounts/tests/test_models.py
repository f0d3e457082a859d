"""Invariants the database itself must keep, whatever the code above it checks."""

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User


@pytest.mark.django_db
def test_the_database_refuses_usernames_that_differ_only_in_case():
    # user_register checks `username__iexact` and then inserts; two concurrent
    # registrations of "Ada" and "ada" both pass that check, so only a constraint can
    # keep usernames unique regardless of case, as API.md section 4 promises.
    User.objects.create_user(username="Ada", password="x")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="ada", password="x")
