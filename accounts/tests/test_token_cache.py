"""Verified tokens are remembered per process, but never past their expiry."""

import time
from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from accounts import tokens
from scoreboard_project.errors import Unauthorized


def token(seconds: int) -> str:
    access = AccessToken()
    access.set_exp(lifetime=timedelta(seconds=seconds))
    access["user_id"] = 7
    access["sid"] = "6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11"
    return str(access)


def test_a_remembered_token_still_expires(monkeypatch):
    raw = token(60)
    assert tokens.access_token_verify(raw).user_id == 7
    real_time = time.time
    monkeypatch.setattr(tokens.time, "time", lambda: real_time() + 61)
    with pytest.raises(Unauthorized):
        tokens.access_token_verify(raw)


def test_a_second_check_of_the_same_token_skips_the_signature(monkeypatch):
    raw = token(60)
    tokens.access_token_verify(raw)
    monkeypatch.setattr(tokens, "AccessToken", lambda raw: pytest.fail("verified twice"))
    assert tokens.access_token_verify(raw).sid == "6f1c2c52-8f0e-4d8e-9a51-6f0b8d2f0a11"


def test_a_bad_token_is_refused_every_time():
    for _ in range(2):
        with pytest.raises(Unauthorized):
            tokens.access_token_verify(token(60)[:-2] + "xx")


@pytest.mark.django_db(transaction=True)
def test_create_token_prints_a_working_access_token(make_user, capsys):
    from django.core.management import call_command

    from accounts.authentication import user_from_bearer

    user = make_user("scripted")
    call_command("create_token", "Scripted")
    token = capsys.readouterr().out.strip()
    assert user_from_bearer(f"Bearer {token}".encode()).id == user.id


@pytest.mark.django_db
def test_create_token_refuses_unknown_users():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("create_token", "nobody-here")
