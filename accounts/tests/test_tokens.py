"""Tokens against the protected endpoint, and the session check behind them.

Every forged token below is a copy of a real, live access token with exactly one thing
changed; the first test proves that the unchanged copy is accepted, so each refusal is due
to that one change.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.conf import settings

from accounts.authentication import user_from_bearer
from accounts.models import LoginSession
from accounts.services import session_revoke, user_set_active
from accounts.sessions import session_cache_key, session_cache_live
from accounts.tests.helpers import (
    assert_score_accepted,
    assert_unauthorized,
    bearer,
    claims_of,
    hand_built,
    post_score,
    sign,
)
from scoreboard_project.errors import Unauthorized
from scoreboard_project.redis import redis_client

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_SECRET = "a-different-secret-of-sufficient-length-0123456789abcdef-0123456789"


@pytest.fixture
def player(make_user):
    return make_user()


@pytest.fixture
def tokens(player, login):
    return login(player)


@pytest.fixture
def claims(tokens):
    """The claims of a live access token: token_type, exp, iat, jti, user_id, sid."""
    return claims_of(tokens["access"])


def probe(api, token: str):
    return post_score(api, authorization=bearer(token))


# The control: a faithful copy is accepted.


def test_a_re_signed_copy_of_a_live_access_token_is_accepted(api, player, claims, action_types):
    assert set(claims) >= {"token_type", "exp", "iat", "jti", "user_id", "sid"}

    assert_score_accepted(probe(api, sign(claims)), user_id=player.id)


def test_a_hand_built_hs256_copy_is_accepted(api, player, claims, action_types):
    token = hand_built(claims, header={"alg": "HS256", "typ": "JWT"}, hmac_sha256=True)

    assert_score_accepted(probe(api, token), user_id=player.id)


# The Authorization header


def test_no_authorization_header_is_401(api, action_types):
    assert_unauthorized(post_score(api, authorization=None))


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT", "Bearer:"])
def test_a_scheme_other_than_bearer_is_401(api, tokens, action_types, scheme):
    assert_unauthorized(post_score(api, authorization=f"{scheme} {tokens['access']}"))


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Bearer a b", "Bearer not-a-jwt", "Bearer a.b.c", "Bearer \u00e9\u00e9\u00e9"],
)
def test_a_malformed_bearer_header_is_401(api, action_types, authorization):
    assert_unauthorized(post_score(api, authorization=authorization))


def test_the_bearer_scheme_is_case_insensitive(api, player, tokens, action_types):
    assert_score_accepted(post_score(api, authorization=f"bearer {tokens['access']}"), user_id=player.id)


# Forged tokens


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_unsigned_alg_none_token_is_401(api, claims, action_types, alg):
    token = hand_built(claims, header={"alg": alg, "typ": "JWT"}, hmac_sha256=False)

    assert_unauthorized(probe(api, token))


def test_a_token_signed_with_another_secret_is_401(api, claims, action_types):
    assert_unauthorized(probe(api, sign(claims, key=OTHER_SECRET)))


def test_a_token_with_a_tampered_payload_keeps_no_valid_signature(api, make_user, tokens, action_types):
    other = make_user()
    header, _payload, signature = tokens["access"].split(".")
    forged_payload = sign({**claims_of(tokens["access"]), "user_id": other.id}).split(".")[1]

    assert_unauthorized(probe(api, f"{header}.{forged_payload}.{signature}"))


def test_a_token_signed_with_hs512_is_401(api, claims, action_types):
    assert_unauthorized(probe(api, sign(claims, algorithm="HS512")))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_a_token_with_an_asymmetric_alg_header_is_401(api, claims, action_types, alg):
    # The classic confusion: an RS/ES header over an HMAC made with the shared secret.
    token = hand_built(claims, header={"alg": alg, "typ": "JWT"}, hmac_sha256=True)

    assert_unauthorized(probe(api, token))


def test_an_expired_token_with_a_valid_signature_is_401(api, claims, action_types):
    now = int(time.time())
    expired = {**claims, "iat": now - settings.JWT_EXPIRY - 10, "exp": now - 1}

    assert_unauthorized(probe(api, sign(expired)))


def test_a_refresh_token_used_as_access_is_401(api, tokens, action_types):
    assert_unauthorized(probe(api, tokens["refresh"]))


def test_an_access_token_relabelled_as_refresh_is_401(api, claims, action_types):
    assert_unauthorized(probe(api, sign({**claims, "token_type": "refresh"})))


@pytest.mark.parametrize("claim", ["user_id", "sid", "token_type", "exp", "jti"])
def test_an_access_token_missing_a_required_claim_is_401(api, claims, action_types, claim):
    del claims[claim]

    assert_unauthorized(probe(api, sign(claims)))


@pytest.mark.parametrize(
    "sid",
    ["not-a-uuid", "", "123", 12345, None, ["x"]],
)
def test_an_access_token_whose_sid_is_not_a_uuid_string_is_401(api, claims, action_types, sid):
    assert_unauthorized(probe(api, sign({**claims, "sid": sid})))


@pytest.mark.parametrize(
    "wrong_type",
    [
        pytest.param(str, id="string"),
        pytest.param(float, id="float"),
        pytest.param(lambda _id: True, id="bool"),
        pytest.param(lambda _id: None, id="null"),
        pytest.param(lambda user_id: [user_id], id="list"),
    ],
)
def test_an_access_token_whose_user_id_is_not_an_integer_is_401(
    api, player, claims, action_types, wrong_type
):
    assert_unauthorized(probe(api, sign({**claims, "user_id": wrong_type(player.id)})))


def test_an_access_token_naming_another_users_id_for_the_session_is_401(api, make_user, claims, action_types):
    other = make_user()

    assert_unauthorized(probe(api, sign({**claims, "user_id": other.id})))


def test_an_access_token_for_a_session_that_never_existed_is_401(api, claims, action_types):
    assert_unauthorized(probe(api, sign({**claims, "sid": str(uuid.uuid4())})))


# Server-side ends of a session


def test_the_token_of_a_deactivated_user_is_401(api, player, tokens, action_types):
    assert_score_accepted(probe(api, tokens["access"]), user_id=player.id)

    user_set_active(user=player, active=False)

    assert_unauthorized(probe(api, tokens["access"]))


def test_a_reactivated_user_does_not_get_old_sessions_back(api, player, tokens, action_types):
    user_set_active(user=player, active=False)
    user_set_active(user=player, active=True)

    assert_unauthorized(probe(api, tokens["access"]))


def test_the_token_of_a_revoked_session_is_401(api, player, tokens, claims, action_types):
    assert_score_accepted(probe(api, tokens["access"]), user_id=player.id)

    session_revoke(sid=claims["sid"], reason="admin")

    assert_unauthorized(probe(api, tokens["access"]))


def test_revoking_one_session_leaves_the_others(api, player, login, claims, action_types):
    other = login(player)

    session_revoke(sid=claims["sid"])

    assert_score_accepted(probe(api, other["access"]), user_id=player.id)


# The session check: Redis on the hot path, the database as the source of truth


@pytest.mark.redis
def test_a_cached_live_session_is_checked_without_any_sql(player, tokens, claims, django_assert_num_queries):
    header = bearer(tokens["access"]).encode()
    user_from_bearer(header)  # warm-up

    with django_assert_num_queries(0):
        caller = user_from_bearer(header)

    assert (caller.id, caller.sid) == (player.id, claims["sid"])


@pytest.mark.redis
def test_a_session_missing_from_redis_is_read_from_the_database_once_then_cached(
    tokens, django_assert_num_queries
):
    header = bearer(tokens["access"]).encode()
    redis_client().flushdb()

    with django_assert_num_queries(1):
        user_from_bearer(header)
    with django_assert_num_queries(0):
        user_from_bearer(header)


@pytest.mark.redis
def test_a_revoked_session_is_refused_from_redis_without_any_sql(tokens, claims, django_assert_num_queries):
    header = bearer(tokens["access"]).encode()
    user_from_bearer(header)
    session_revoke(sid=claims["sid"])

    with django_assert_num_queries(0), pytest.raises(Unauthorized):
        user_from_bearer(header)


@pytest.mark.redis
def test_a_late_live_cache_write_cannot_resurrect_a_revoked_session(player, tokens, claims):
    """A check that read the session from the database just before a logout must not
    overwrite the logout's 'revoked' mark in Redis with 'live' afterwards.

    The interleaving, step by step, of `session_load` (cache miss) and `session_revoke`:
    """
    header = bearer(tokens["access"]).encode()
    session = LoginSession.objects.get(id=claims["sid"])
    redis_client().delete(session_cache_key(claims["sid"]))  # the entry's TTL ran out
    # 1. a request misses the cache and reads the session from the database: live.
    # 2. the user logs out: the database says revoked, Redis gets the revoked mark.
    session_revoke(sid=claims["sid"])
    # 3. the first request now stores what it read in step 1.
    session_cache_live(sid=claims["sid"], user_id=player.id, expires_at=session.expires_at)

    with pytest.raises(Unauthorized):
        user_from_bearer(header)


def test_without_redis_every_session_check_asks_the_database(
    settings, player, login, django_assert_num_queries
):
    settings.REDIS_URL = ""
    header = bearer(login(player)["access"]).encode()
    user_from_bearer(header)

    with django_assert_num_queries(1):
        user_from_bearer(header)


def test_without_redis_a_revocation_is_seen_at_once(settings, player, login):
    settings.REDIS_URL = ""
    tokens = login(player)
    header = bearer(tokens["access"]).encode()
    assert user_from_bearer(header).id == player.id

    session_revoke(sid=claims_of(tokens["access"])["sid"])

    with pytest.raises(Unauthorized):
        user_from_bearer(header)
