"""The Docker Compose stack and image, read (no Docker engine in the test environment):
web, worker, beat, PostgreSQL and Redis, each with a healthcheck, in a sane start order."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_stack_has_every_service_with_a_healthcheck():
    services = compose()["services"]
    assert set(services) >= {"web", "worker", "beat", "postgres", "redis"}
    for name in ("web", "worker", "beat", "postgres", "redis"):
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])


def test_the_application_waits_for_healthy_dependencies_and_uses_them():
    services = compose()["services"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        for dependency in ("postgres", "redis"):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)
        environment = services[name]["environment"]
        assert environment["DB_CONNECTION_STRING"].startswith("postgresql://")
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["env_file"] == ".env"
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"  # migrated
    assert "migrate" in " ".join(services["web"]["command"])
    # Published on the loopback only: the TLS-terminating reverse proxy is the way in.
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_the_image_runs_as_an_unprivileged_user_without_local_secrets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "\nUSER scoreboard\n" in dockerfile
    assert "uvicorn" in dockerfile and "scoreboard_project.asgi:application" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".env.*", ".git", "var"} <= set(ignored)


def test_the_asgi_module_hides_what_it_imported_from_the_garbage_collector():
    """A full collection walking every module's objects stalled each worker for ~100 ms."""
    import gc

    import scoreboard_project.asgi  # noqa: F401

    assert gc.get_freeze_count() > 50_000
    assert gc.get_threshold()[0] == 10_000
