"""Start-up rules: production refuses weak secrets; the deploy check is clean but for choices."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG = "k3Y-" + "0123456789abcdefghij" * 3  # 64 characters, varied
JWT = "jwt-" + "abcdefghij0123456789" * 2
SETUP = "import django; django.setup(); print('started')"


def start(
    extra_env: dict[str, str], code: str = SETUP, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "JWT_SECRET", "DEBUG", "DB_CONNECTION_STRING", "REDIS_URL"}
    }
    env.update(
        {"DJANGO_SETTINGS_MODULE": "scoreboard_project.settings", "SCOREBOARD_ENV_FILE": "/nonexistent"}
    )
    env.update(extra_env)
    command = [sys.executable, *(args or ("-c", code))]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "secrets",
    [
        {},
        {"SECRET_KEY": STRONG},
        {"JWT_SECRET": STRONG},
        {"SECRET_KEY": STRONG, "JWT_SECRET": "short"},
        {"SECRET_KEY": "django-insecure-" + STRONG, "JWT_SECRET": STRONG},
        {"SECRET_KEY": STRONG, "JWT_SECRET": "your-secret-key"},
        {"SECRET_KEY": "a" * 60, "JWT_SECRET": JWT},
    ],
    ids=[
        "none",
        "no-jwt-secret",
        "no-secret-key",
        "short-jwt-secret",
        "insecure-prefix",
        "placeholder",
        "monotone",
    ],
)
def test_production_refuses_to_start_without_real_secrets(secrets):
    result = start({"DEBUG": "false", **secrets})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "started" not in result.stdout


def test_production_starts_with_real_secrets():
    result = start({"DEBUG": "false", "SECRET_KEY": STRONG, "JWT_SECRET": JWT})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_debug_mode_starts_without_secrets():
    assert start({"DEBUG": "true"}).returncode == 0


def test_an_unknown_database_scheme_is_refused():
    result = start({"DEBUG": "true", "DB_CONNECTION_STRING": "mysql://root@localhost/x"})
    assert result.returncode != 0 and "DB_CONNECTION_STRING" in result.stderr


def test_the_deploy_check_reports_only_the_documented_choice():
    """Behind a TLS proxy: W008 (the proxy redirects to HTTPS) and W021 (HSTS preload is opt-in)."""
    result = start(
        {
            "DEBUG": "false",
            "SECRET_KEY": STRONG,
            "JWT_SECRET": JWT,
            "SECURE_COOKIES": "true",
            "SECURE_HSTS_SECONDS": "31536000",
            "BEHIND_PROXY": "true",
            "ALLOWED_HOSTS": "scores.example.com",
            "REDIS_URL": "redis://127.0.0.1:6379/9",
        },
        args=("manage.py", "check", "--deploy", "--fail-level", "DEBUG"),
    )
    reported = {
        line.split(")")[0].lstrip("?: (") for line in result.stderr.splitlines() if line.startswith("?: (")
    }
    assert reported == {"security.W008", "security.W021"}, result.stderr


def test_sqlite_urls_relative_and_absolute():
    """sqlite:///x is relative, sqlite:////x absolute (the absolute form used to lose its
    leading slash, so a live-server test could not point at a temporary file)."""
    from scoreboard_project.env import database_from_url

    base = Path("/srv/app")
    assert database_from_url("sqlite:///var/other.db", base_dir=base)["NAME"] == "var/other.db"
    assert database_from_url("sqlite:////tmp/live.sqlite3", base_dir=base)["NAME"] == "/tmp/live.sqlite3"
    assert database_from_url("", base_dir=base)["NAME"] == base / "var" / "db.sqlite3"


def test_hot_settings_follow_every_change_made_through_override_settings(settings):
    from django.test import override_settings

    from scoreboard_project.hotsettings import hot

    assert hot.RATE_LIMIT_WINDOW == settings.RATE_LIMIT_WINDOW
    settings.RATE_LIMIT_WINDOW = 17
    assert hot.RATE_LIMIT_WINDOW == 17
    with override_settings(RATE_LIMIT_WINDOW=23):
        assert hot.RATE_LIMIT_WINDOW == 23
    assert hot.RATE_LIMIT_WINDOW == 17
