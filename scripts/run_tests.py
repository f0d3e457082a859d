#!/usr/bin/env python
"""`make test`: find PostgreSQL and Redis, say loudly what runs where, run the suite.

With both services reachable the suite runs twice: on PostgreSQL + Redis (everything), then
on the embedded default (SQLite, no Redis), which skips only the tests that need a service.
Without them only the embedded pass runs, and the skipped tests are listed. With
REQUIRE_SERVICES=1 a missing service is a failure.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def banner(lines: list[str]) -> None:
    width = max(len(line) for line in lines) + 4
    print("\n" + "=" * width)
    for line in lines:
        print(f"  {line}")
    print("=" * width + "\n", flush=True)


def postgres_reachable(url: str) -> str | None:
    """Can we reach the server? (The test database is created beside the named one.)"""
    from urllib.parse import urlsplit, urlunsplit

    server = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    try:
        import psycopg

        with psycopg.connect(server, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as error:  # any failure means: not usable for tests
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


def redis_reachable(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except Exception as error:
        return str(error) or repr(error)
    return None


def pytest_run(env_overrides: dict[str, str], args: list[str]) -> int:
    env = dict(os.environ)
    env.update(env_overrides)
    # Fast hashing in tests only; production uses PBKDF2 (settings.PASSWORD_HASHERS).
    env["PASSWORD_HASHERS"] = "django.contrib.auth.hashers.MD5PasswordHasher"
    env.setdefault("DEBUG", "false")
    command = [sys.executable, "-m", "pytest", *args]
    return subprocess.call(command, cwd=ROOT, env=env)


def main() -> int:
    args = sys.argv[1:]
    required = os.environ.get("REQUIRE_SERVICES", "") in ("1", "true", "yes")
    db_url = os.environ.get("TEST_DB_CONNECTION_STRING", DEFAULT_DB)
    redis_url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    db_problem = postgres_reachable(db_url)
    redis_problem = redis_reachable(redis_url)

    lint = subprocess.call([sys.executable, "-m", "ruff", "check", "--quiet", "."], cwd=ROOT)
    if lint:
        print("ruff check failed (see above).", file=sys.stderr)
        return lint

    browser = (
        []
        if Path("/usr/bin/chromium").exists() and shutil.which("chromedriver")
        else ["Chromium and chromedriver (apt-get install chromium chromium-driver): the page's browser test"]
    )
    if browser and os.environ.get("REQUIRE_BROWSER", "") in ("1", "true", "yes"):
        banner(["REQUIRE_BROWSER=1 and the browser is missing; failing:", *browser])
        return 2
    if browser:
        banner(["WARNING: the browser test will be SKIPPED:", *browser])

    missing = []
    if db_problem:
        missing.append(f"PostgreSQL at {db_url}: {db_problem}")
    if redis_problem:
        missing.append(f"Redis at {redis_url}: {redis_problem}")
    if missing and required:
        banner(["REQUIRE_SERVICES=1 and a service is missing; failing:", *missing])
        return 2

    status = 0
    if not missing:
        banner(
            [
                "PASS 1 of 2: PostgreSQL + Redis (production configuration)",
                f"database: {db_url}   redis: {redis_url}",
            ]
        )
        status = pytest_run({"DB_CONNECTION_STRING": db_url, "REDIS_URL": redis_url}, args)
        if status:
            return status
        pass_name = "PASS 2 of 2: embedded default (SQLite, no Redis)"
    else:
        pass_name = "ONLY PASS: embedded default (SQLite, no Redis)"
        banner(
            [
                "WARNING: services missing; the tests that need them are SKIPPED:",
                *missing,
                "Concurrency, idempotency and ranking tests on real services did NOT run.",
                "Start PostgreSQL and Redis (see README) for the full suite.",
            ]
        )
    banner([pass_name, "tests marked 'postgres' or 'redis' skip in this pass (listed below)"])
    status = pytest_run({"DB_CONNECTION_STRING": "", "REDIS_URL": ""}, args)
    if missing and status == 0:
        banner(["Passed on the embedded default ONLY. Skipped for missing services:", *missing])
    return status


if __name__ == "__main__":
    sys.exit(main())
