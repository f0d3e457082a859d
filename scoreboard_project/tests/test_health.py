"""/healthz (the process answers) and /readyz (its dependencies answer)."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_is_a_constant(asgi):
    response = asgi("GET", "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_the_database_and_redis(asgi, settings):
    response = asgi("GET", "/readyz")
    assert response.status_code == 200
    expected_redis = "ok" if settings.REDIS_URL else "not configured"
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": expected_redis}}


def test_readyz_is_503_when_redis_is_unreachable(asgi, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    response = asgi("GET", "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["error_code"] == "SERVICE_UNAVAILABLE" and body["retry_after"] == 5
    assert body["details"]["redis"].startswith("unavailable") and body["details"]["database"] == "ok"
    assert response["Retry-After"] == "5"


def test_probes_by_address_are_answered_whatever_the_host_header(asgi, settings):
    """A compose healthcheck asks http://127.0.0.1:8000/readyz while ALLOWED_HOSTS names the
    public host only; the API itself still refuses a foreign Host."""
    settings.ALLOWED_HOSTS = ["scores.example.com"]
    for path in ("/healthz", "/readyz"):
        assert asgi("GET", path, headers={"host": "172.18.0.5:8000"}).status_code == 200, path
    refused = asgi("GET", "/api/scoreboard", headers={"host": "172.18.0.5:8000"})
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_ACTION"
