"""The account endpoints of API.md section 4, through HTTP: shapes, statuses, headers."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from accounts.models import LoginSession, User
from accounts.tests.helpers import (
    LOGOUT_URL,
    PASSWORD,
    REFRESH_URL,
    REGISTER_URL,
    TOKEN_URL,
    assert_error,
    assert_score_accepted,
    assert_unauthorized,
    bearer,
    claims_of,
    post_score,
)

pytestmark = pytest.mark.django_db(transaction=True)

STRONG = "violet-Otter-lantern-42"
TOKEN_KEYS = {"access", "refresh", "token_type", "expires_in"}


def register(api, username, password=STRONG):
    return api.post(REGISTER_URL, {"username": username, "password": password}, format="json")


def obtain(api, username, password=PASSWORD, **extra):
    return api.post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def refresh(api, token):
    return api.post(REFRESH_URL, {"refresh": token}, format="json")


def logout(api, access):
    return api.post(LOGOUT_URL, HTTP_AUTHORIZATION=bearer(access))


# Registration


def test_register_answers_201_with_exactly_user_id_and_username(api):
    response = register(api, "ada.lovelace_1-x")

    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get(username="ada.lovelace_1-x")
    assert body == {"user_id": user.id, "username": "ada.lovelace_1-x"}
    assert user.is_active and not user.is_staff
    assert user.password != STRONG and user.check_password(STRONG)


def test_a_registered_user_can_log_in(api):
    register(api, "grace")

    response = obtain(api, "grace", STRONG)

    assert response.status_code == 200, response.content
    assert set(response.json()) == TOKEN_KEYS


@pytest.mark.parametrize("username", ["abc", "x" * 50])
def test_register_accepts_usernames_of_3_and_50_characters(api, username):
    assert register(api, username).status_code == 201


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("ab", id="too-short"),
        pytest.param("", id="empty"),
        pytest.param("x" * 51, id="51-chars"),
        pytest.param("x" * 151, id="over-serializer-max"),
        pytest.param("ada lovelace", id="space"),
        pytest.param("ada@home", id="at-sign"),
        pytest.param("ada/../x", id="slash"),
        pytest.param("<script>", id="angle-brackets"),
        pytest.param(" ada", id="leading-space"),
        pytest.param("ada\x00x", id="nul"),
    ],
)
def test_register_refuses_a_bad_username_with_details(api, username):
    response = register(api, username)

    assert_error(response, status=400, code="INVALID_ACTION", details={"username"})
    assert not User.objects.exists()


@pytest.mark.parametrize("username", ["alice\n", "x" * 50 + "\n"])
def test_register_refuses_a_username_with_a_trailing_newline(api, username):
    # `$` in USERNAME_RE also matches just before a final "\n".
    response = register(api, username)

    assert_error(response, status=400, code="INVALID_ACTION", details={"username"})
    assert not User.objects.exists()


@pytest.mark.parametrize("taken", ["Alice", "alice", "ALICE"])
def test_register_refuses_a_taken_username_whatever_its_case(api, make_user, taken):
    make_user("Alice")

    response = register(api, taken)

    body = assert_error(response, status=400, code="INVALID_ACTION", details={"username"})
    assert body["details"]["username"] == "this username is taken"
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Sh0rt!", id="too-short"),
        pytest.param("password", id="common"),
        pytest.param("83920174659", id="numeric"),
        pytest.param("margaretha1", id="like-the-username"),
    ],
)
def test_register_refuses_a_weak_password_with_details(api, password):
    response = register(api, "margaretha", password)

    assert_error(response, status=400, code="INVALID_ACTION", details={"password"})
    assert not User.objects.exists()


def test_register_reports_username_and_password_problems_together(api):
    response = register(api, "a", "123")

    assert_error(response, status=400, code="INVALID_ACTION", details={"username", "password"})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": 12345, "password": STRONG}, "username"),
        ({"username": True, "password": STRONG}, "username"),
        ({"username": ["ada"], "password": STRONG}, "username"),
        ({"username": "ada", "password": 12345678901}, "password"),
        ({"username": "ada", "password": None}, "password"),
        ({"password": STRONG}, "username"),
        ({"username": "ada"}, "password"),
    ],
)
def test_register_refuses_a_missing_or_ill_typed_field(api, payload, field):
    response = api.post(REGISTER_URL, payload, format="json")

    assert_error(response, status=400, code="INVALID_ACTION", details={field})
    assert not User.objects.exists()


def test_register_refuses_malformed_json(api):
    response = api.post(REGISTER_URL, '{"username": "ada", "password": ', content_type="application/json")

    assert_error(response, status=400, code="INVALID_ACTION")


def test_register_refuses_a_body_that_is_not_json(api):
    response = api.post(REGISTER_URL, "username=ada", content_type="application/x-www-form-urlencoded")

    assert_error(response, status=400, code="INVALID_ACTION")


def test_register_is_forbidden_when_registration_is_closed(api, settings):
    settings.REGISTRATION_OPEN = False

    response = register(api, "ada")

    assert_error(response, status=403, code="FORBIDDEN")
    assert not User.objects.exists()


# Login


def test_token_answers_exactly_the_pair_with_bearer_type_and_expiry(api, make_user):
    make_user("ada")

    response = obtain(api, "ada")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert type(body["expires_in"]) is int
    assert body["expires_in"] == settings.JWT_EXPIRY


def test_the_access_token_is_hs256_with_user_id_and_sid_of_a_new_session(api, make_user):
    import jwt

    user = make_user("ada")

    body = obtain(api, "ada").json()

    assert jwt.get_unverified_header(body["access"])["alg"] == "HS256"
    claims = claims_of(body["access"])
    assert type(claims["user_id"]) is int and claims["user_id"] == user.id
    assert str(uuid.UUID(claims["sid"])) == claims["sid"]
    assert claims["exp"] - claims["iat"] == settings.JWT_EXPIRY
    session = LoginSession.objects.get(id=claims["sid"])
    assert session.user_id == user.id and session.is_live
    refresh_claims = claims_of(body["refresh"])
    assert refresh_claims["sid"] == claims["sid"]
    assert refresh_claims["user_id"] == user.id
    assert refresh_claims["token_type"] == "refresh" != claims["token_type"]


def test_each_login_opens_its_own_session(api, make_user):
    make_user("ada")

    first = claims_of(obtain(api, "ada").json()["access"])
    second = claims_of(obtain(api, "ada").json()["access"])

    assert first["sid"] != second["sid"]
    assert LoginSession.objects.filter(user__username="ada").count() == 2


def test_the_issued_access_token_opens_the_protected_endpoint(api, make_user, action_types):
    user = make_user("ada")
    access = obtain(api, "ada").json()["access"]

    assert_score_accepted(post_score(api, authorization=bearer(access)), user_id=user.id)


def test_token_refuses_a_wrong_password_with_401_and_www_authenticate(api, make_user):
    make_user("ada")

    response = obtain(api, "ada", "not-the-password-1")

    assert_unauthorized(response)
    assert not LoginSession.objects.exists()


def test_token_refuses_an_unknown_user_exactly_like_a_wrong_password(api, make_user):
    make_user("ada")

    unknown = assert_unauthorized(obtain(api, "nobody-here"))
    wrong = assert_unauthorized(obtain(api, "ada", "not-the-password-1"))

    assert unknown == wrong


def test_token_forbids_an_inactive_user_with_the_right_password(api, make_user):
    make_user("ada", is_active=False)

    response = obtain(api, "ada")

    assert_error(response, status=403, code="FORBIDDEN")
    assert not LoginSession.objects.exists()


def test_token_does_not_tell_an_inactive_user_apart_without_the_right_password(api, make_user):
    make_user("ada", is_active=False)

    assert_unauthorized(obtain(api, "ada", "not-the-password-1"))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": 42, "password": PASSWORD}, "username"),
        ({"username": "ada", "password": 42}, "password"),
        ({"password": PASSWORD}, "username"),
        ({"username": "ada"}, "password"),
    ],
)
def test_token_refuses_a_missing_or_ill_typed_field(api, make_user, payload, field):
    make_user("ada")

    response = api.post(TOKEN_URL, payload, format="json")

    assert_error(response, status=400, code="INVALID_ACTION", details={field})


def test_token_refuses_malformed_json(api):
    response = api.post(TOKEN_URL, "{nope", content_type="application/json")

    assert_error(response, status=400, code="INVALID_ACTION")


def test_token_answers_405_in_json_to_get(api):
    assert_error(api.get(TOKEN_URL), status=405, code="METHOD_NOT_ALLOWED")


# Login rate limits (windows of an hour, so that a window boundary cannot fall mid-test)


def test_login_is_rate_limited_per_username_across_ips(api, make_user, settings):
    settings.LOGIN_RATE_PER_USERNAME = "3/h"
    settings.LOGIN_RATE_PER_IP = "1000/h"
    make_user("ada")
    make_user("grace")
    for attempt in range(3):
        assert_unauthorized(obtain(api, "ada", "wrong-password-1", REMOTE_ADDR=f"10.0.0.{attempt + 1}"))

    # The right password from a fresh address does not help.
    limited = obtain(api, "ada", REMOTE_ADDR="10.0.0.9")

    body = assert_error(limited, status=429, code="RATE_LIMIT_EXCEEDED", retry_after=True)
    assert body["retry_after"] <= 3600
    assert not LoginSession.objects.exists()
    # Another username from an address already used is not limited.
    assert obtain(api, "grace", REMOTE_ADDR="10.0.0.1").status_code == 200


def test_the_per_username_limit_ignores_letter_case(api, make_user, settings):
    settings.LOGIN_RATE_PER_USERNAME = "3/h"
    settings.LOGIN_RATE_PER_IP = "1000/h"
    make_user("ada")
    for attempt, spelling in enumerate(["ADA", "Ada", "aDa"]):
        assert_unauthorized(obtain(api, spelling, "wrong-password-1", REMOTE_ADDR=f"10.0.1.{attempt + 1}"))

    limited = obtain(api, "ada", REMOTE_ADDR="10.0.1.9")

    assert_error(limited, status=429, code="RATE_LIMIT_EXCEEDED", retry_after=True)


def test_login_is_rate_limited_per_ip_across_usernames(api, make_user, settings):
    settings.LOGIN_RATE_PER_IP = "3/h"
    settings.LOGIN_RATE_PER_USERNAME = "1000/h"
    make_user("ada")
    for attempt in range(3):
        assert_unauthorized(obtain(api, f"stranger{attempt}", REMOTE_ADDR="10.0.2.1"))

    limited = obtain(api, "ada", REMOTE_ADDR="10.0.2.1")

    body = assert_error(limited, status=429, code="RATE_LIMIT_EXCEEDED", retry_after=True)
    assert body["retry_after"] <= 3600
    assert not LoginSession.objects.exists()
    # The same user from another address is not limited.
    assert obtain(api, "ada", REMOTE_ADDR="10.0.2.2").status_code == 200


def test_successful_logins_under_the_limits_are_not_refused(api, make_user, settings):
    settings.LOGIN_RATE_PER_USERNAME = "3/h"
    settings.LOGIN_RATE_PER_IP = "3/h"
    make_user("ada")

    statuses = [obtain(api, "ada").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


# Refresh


def test_refresh_returns_a_new_pair_for_the_same_session(api, make_user, login, action_types):
    user = make_user()
    first = login(user)

    response = refresh(api, first["refresh"])

    assert response.status_code == 200, response.content
    second = response.json()
    assert set(second) == TOKEN_KEYS
    assert second["token_type"] == "Bearer" and second["expires_in"] == settings.JWT_EXPIRY
    assert second["access"] != first["access"] and second["refresh"] != first["refresh"]
    assert claims_of(second["access"])["sid"] == claims_of(first["access"])["sid"]
    assert_score_accepted(post_score(api, authorization=bearer(second["access"])), user_id=user.id)
    assert refresh(api, second["refresh"]).status_code == 200


def test_the_old_refresh_token_is_dead_after_a_refresh(api, make_user, login):
    first = login(make_user())
    assert refresh(api, first["refresh"]).status_code == 200

    assert_unauthorized(refresh(api, first["refresh"]))


def test_reusing_a_rotated_refresh_token_revokes_the_whole_session(api, make_user, login, action_types):
    user = make_user()
    first = login(user)
    second = refresh(api, first["refresh"]).json()
    third = refresh(api, second["refresh"]).json()
    assert_score_accepted(post_score(api, authorization=bearer(third["access"])), user_id=user.id)

    assert_unauthorized(refresh(api, first["refresh"]))  # the thief, or the victim, replays

    assert_unauthorized(post_score(api, authorization=bearer(third["access"])))
    assert_unauthorized(refresh(api, third["refresh"]))
    session = LoginSession.objects.get(id=claims_of(third["access"])["sid"])
    assert session.revoked_at is not None and session.revoked_reason == "refresh_reuse"


def test_refresh_refuses_an_access_token(api, make_user, login):
    tokens = login(make_user())

    assert_unauthorized(refresh(api, tokens["access"]))


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"])
def test_refresh_refuses_a_garbage_refresh_token(api, token):
    assert_unauthorized(refresh(api, token))


@pytest.mark.parametrize("payload", [{"refresh": ""}, {"refresh": 42}, {"refresh": None}, {}])
def test_refresh_refuses_a_missing_or_ill_typed_refresh_field(api, payload):
    response = api.post(REFRESH_URL, payload, format="json")

    assert_error(response, status=400, code="INVALID_ACTION", details={"refresh"})


def test_refresh_refuses_the_token_of_a_deactivated_user(api, make_user, login):
    from accounts.services import user_set_active

    user = make_user()
    tokens = login(user)
    user_set_active(user=user, active=False)

    assert_unauthorized(refresh(api, tokens["refresh"]))


# Logout


def test_logout_answers_204_with_no_body(api, make_user, login):
    tokens = login(make_user())

    response = logout(api, tokens["access"])

    assert response.status_code == 204
    assert response.content == b""


def test_after_logout_the_access_token_is_refused_at_once(api, make_user, login, action_types):
    user = make_user()
    tokens = login(user)
    assert_score_accepted(post_score(api, authorization=bearer(tokens["access"])), user_id=user.id)

    assert logout(api, tokens["access"]).status_code == 204

    assert_unauthorized(post_score(api, authorization=bearer(tokens["access"])))
    assert_unauthorized(logout(api, tokens["access"]))


def test_after_logout_the_refresh_token_of_that_session_is_dead(api, make_user, login):
    tokens = login(make_user())

    assert logout(api, tokens["access"]).status_code == 204

    assert_unauthorized(refresh(api, tokens["refresh"]))


def test_logout_leaves_the_users_other_sessions_working(api, make_user, login, action_types):
    user = make_user()
    phone = login(user)
    laptop = login(user)

    assert logout(api, phone["access"]).status_code == 204

    assert_score_accepted(post_score(api, authorization=bearer(laptop["access"])), user_id=user.id)
    assert refresh(api, laptop["refresh"]).status_code == 200
    assert_unauthorized(post_score(api, authorization=bearer(phone["access"])))


def test_logout_without_a_token_is_401_with_www_authenticate(api):
    assert_unauthorized(api.post(LOGOUT_URL))


def test_logout_takes_effect_at_once_without_redis(api, make_user, settings, action_types):
    """Without Redis the database is the source of truth for every session check."""
    settings.REDIS_URL = ""
    user = make_user("ada")
    tokens = obtain(api, "ada").json()
    assert_score_accepted(post_score(api, authorization=bearer(tokens["access"])), user_id=user.id)

    assert logout(api, tokens["access"]).status_code == 204

    assert_unauthorized(post_score(api, authorization=bearer(tokens["access"])))
    assert_unauthorized(refresh(api, tokens["refresh"]))
