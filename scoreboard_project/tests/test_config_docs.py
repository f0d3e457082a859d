"""README's configuration reference (and .env.example) name every environment variable the
service reads, and nothing it does not: a new variable cannot go undocumented."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["scoreboard_project", "accounts", "scores", "leaderboard", "antifraud"]
# env.int("NAME", ...), _secret("NAME", ...), os.environ.get("NAME") / os.environ["NAME"]
READ = re.compile(
    r"""(?:\benv\.(?:str|int|float|bool|list|raw)|\b_secret|os\.environ\.get|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|(.*)\|(.*)\|\s*$")
NOT_CONFIGURATION = {"DJANGO_SETTINGS_MODULE"}


def names_in_source() -> set[str]:
    """Every variable name the code reads, found by reading the code (every branch)."""
    names: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            for match in READ.finditer(path.read_text()):
                names.add(match.group(1) or match.group(2))
    return names - NOT_CONFIGURATION


def names_read_at_start() -> set[str]:
    """Every variable name the settings ask for when they load (helpers included)."""
    script = (
        "import json, os\n"
        "from scoreboard_project import env\n"
        "seen = []\n"
        "raw = env.Env.raw\n"
        "env.Env.raw = lambda self, name: (seen.append(name), raw(self, name))[1]\n"
        "import scoreboard_project.settings\n"
        "print(json.dumps(seen))\n"
    )
    environment = {
        **os.environ,
        "DEBUG": "true",
        # A PostgreSQL URL takes the branch that reads the PostgreSQL-only variables.
        "DB_CONNECTION_STRING": "postgresql://nobody@127.0.0.1:1/nothing",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def readme_configuration_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return rows


def test_the_source_scan_finds_what_the_settings_read():
    at_start = names_read_at_start()
    assert {"SECRET_KEY", "JWT_SECRET", "DB_CONNECTION_STRING", "DB_CONN_MAX_AGE", "BEHIND_PROXY"} <= at_start
    assert at_start <= names_in_source() | {"SCOREBOARD_ENV_FILE"}, at_start - names_in_source()


def test_every_variable_is_in_the_readme_configuration_reference_with_default_and_meaning():
    read = names_in_source() | names_read_at_start()
    rows = readme_configuration_rows()
    missing = sorted(read - set(rows))
    assert not missing, f"README.md, section Configuration, lacks: {missing}"
    stale = sorted(set(rows) - read)
    assert not stale, f"README.md documents variables nothing reads: {stale}"
    for name, (default, meaning) in rows.items():
        assert default and meaning, f"{name}: default and meaning must both be given"


def test_every_variable_is_in_env_example():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    missing = sorted((names_in_source() | names_read_at_start()) - listed)
    assert not missing, f".env.example lacks: {missing}"
