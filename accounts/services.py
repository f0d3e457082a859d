"""Writes for accounts: registration, login sessions, activation."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import LoginSession, ServiceAccount, User
from accounts.sessions import session_cache_live, session_cache_revoked
from accounts.tokens import refresh_token_verify, service_token_issue, token_pair_issue
from scoreboard_project.errors import Forbidden, InvalidAction, Unauthorized

logger = logging.getLogger("scoreboard.auth")

USERNAME_RE = re.compile(r"[A-Za-z0-9_.\-]{3,50}")
# A hash to check against when the username is unknown, so both paths cost the same.
_DUMMY_USER = User(username="nobody")


def user_register(*, username: str, password: str) -> User:
    """Create a player account."""
    if not settings.REGISTRATION_OPEN:
        raise Forbidden("Registration is closed.")
    details = {}
    if not USERNAME_RE.fullmatch(username):
        details["username"] = "3-50 characters: letters, digits, '_', '.', '-'"
    elif User.objects.filter(username__iexact=username).exists():
        details["username"] = "this username is taken"
    candidate = User(username=username)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as error:
        details["password"] = " ".join(error.messages)
    if details:
        raise InvalidAction("The registration is invalid.", details=details)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password)
    except IntegrityError:
        raise InvalidAction(
            "The registration is invalid.", details={"username": "this username is taken"}
        ) from None
    transaction.on_commit(lambda: _publish_username(user))
    return user


def _publish_username(user: User) -> None:
    from leaderboard.services import leaderboard_name_set

    leaderboard_name_set(user_id=user.id, username=user.username)


def user_authenticate(*, username: str, password: str) -> User:
    """Check credentials; an inactive account with the right password is forbidden.

    Usernames are unique regardless of case, so "Ada" signs in as "ada".
    """
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        _DUMMY_USER.set_password(password)  # equalise timing with the found-user path
        logger.info(
            "login failed: unknown username %r",
            username,
            extra={"event": "login_failed", "reason": "unknown_username", "username": username[:50]},
        )
        raise Unauthorized("Invalid username or password.")
    if not user.check_password(password):
        logger.info(
            "login failed: wrong password for user %s",
            user.id,
            extra={"event": "login_failed", "reason": "wrong_password", "user_id": user.id},
        )
        raise Unauthorized("Invalid username or password.")
    if not user.is_active:
        raise Forbidden("This account is inactive.")
    return user


def session_open(*, user: User) -> dict:
    """Start a login session and return its first token pair."""
    sid = str(uuid.uuid4())
    body, jti = token_pair_issue(user_id=user.id, sid=sid)
    expires_at = timezone.now() + timedelta(seconds=settings.JWT_REFRESH_EXPIRY)
    LoginSession.objects.create(id=sid, user=user, refresh_jti=jti, expires_at=expires_at)
    transaction.on_commit(lambda: session_cache_live(sid=sid, user_id=user.id, expires_at=expires_at))
    return body


def session_refresh(*, raw_refresh: str) -> dict:
    """Rotate a refresh token; presenting an already-rotated one revokes the session."""
    claims, jti = refresh_token_verify(raw_refresh)
    stolen = False
    with transaction.atomic():
        session = (
            LoginSession.objects.select_for_update()
            .select_related("user")
            .filter(id=claims.sid, user_id=claims.user_id)
            .first()
        )
        if session is None or not session.is_live or not session.user.is_active:
            raise Unauthorized("The session is no longer valid.")
        if session.refresh_jti != jti:
            stolen = True
            _revoke(LoginSession.objects.filter(pk=session.pk), reason="refresh_reuse")
        else:
            body, new_jti = token_pair_issue(user_id=session.user_id, sid=str(session.id))
            session.refresh_jti = new_jti
            session.refreshed_at = timezone.now()
            session.save(update_fields=["refresh_jti", "refreshed_at"])
    if stolen:
        logger.warning("refresh token reuse: session %s of user %s revoked", claims.sid, claims.user_id)
        raise Unauthorized("This refresh token was already used; the session is revoked.")
    return body


def session_revoke(*, sid: str, reason: str = "logout") -> None:
    """End one session: its access and refresh tokens stop working at once."""
    _revoke(LoginSession.objects.filter(id=sid), reason=reason)


def user_set_active(*, user: User, active: bool) -> None:
    """Activate or deactivate a user; deactivation ends their sessions and hides them."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=active, updated_at=timezone.now())
        user.is_active = active
        if not active:
            _revoke(LoginSession.objects.filter(user=user), reason="deactivated")
    transaction.on_commit(lambda: _refresh_ranking(user.id))


def _refresh_ranking(user_id: int) -> None:
    from leaderboard.services import leaderboard_user_sync

    leaderboard_user_sync(user_id=user_id)


def _revoke(sessions, *, reason: str) -> None:
    rows = list(sessions.filter(revoked_at__isnull=True).values_list("id", "user_id"))
    if not rows:
        return
    sids = [str(sid) for sid, _ in rows]
    by_user: dict[int, list[str]] = {}
    for sid, user_id in rows:
        by_user.setdefault(user_id, []).append(str(sid))
    LoginSession.objects.filter(id__in=sids).update(revoked_at=timezone.now(), revoked_reason=reason)

    def after_commit() -> None:
        from leaderboard.events import sessions_ended

        session_cache_revoked(sids=sids)
        for user_id, ended in by_user.items():
            sessions_ended(user_id=user_id, sids=ended)

    transaction.on_commit(after_commit)


def service_account_create(*, name: str, description: str = "") -> ServiceAccount:
    """Create a service account with its own (password-less) user."""
    if not USERNAME_RE.fullmatch(name) or len(name) > 42:
        raise InvalidAction(
            "The name is invalid.", details={"name": "3-42 characters: letters, digits, '_', '.', '-'"}
        )
    with transaction.atomic():
        user = User(username=f"service.{name}")
        user.set_unusable_password()
        user.save()
        return ServiceAccount.objects.create(name=name, user=user, description=description)


def service_token_create(*, account: ServiceAccount) -> str:
    """Open a session for a service account and return its access token (shown once)."""
    if not account.enabled or not account.user.is_active:
        raise Forbidden("This service account is disabled.")
    lifetime = timedelta(seconds=settings.SERVICE_TOKEN_LIFETIME)
    sid = str(uuid.uuid4())
    expires_at = timezone.now() + lifetime
    LoginSession.objects.create(id=sid, user=account.user, refresh_jti="", expires_at=expires_at)
    transaction.on_commit(lambda: session_cache_live(sid=sid, user_id=account.user_id, expires_at=expires_at))
    return service_token_issue(user_id=account.user_id, sid=sid, lifetime=lifetime)


def service_account_set_enabled(*, account: ServiceAccount, enabled: bool) -> None:
    """Enable or disable a service account; disabling ends every token it holds."""
    with transaction.atomic():
        ServiceAccount.objects.filter(pk=account.pk).update(enabled=enabled)
        account.enabled = enabled
        if not enabled:
            _revoke(LoginSession.objects.filter(user_id=account.user_id), reason="service_disabled")
