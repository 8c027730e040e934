"""docker-compose.yml stays valid (checked by docker-compose itself; no Docker engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def test_docker_compose_file_is_accepted_by_docker_compose():
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is installed by scripts/system-deps.sh"
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_varco_under_gunicorn_with_postgres_redis_and_smtp():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"varco", "postgres", "redis", "mailpit"} <= set(services)
    env = services["varco"]["environment"]
    assert env["VARCO_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["VARCO_REDIS_URL"].startswith("redis://")
    assert env["VARCO_SMTP_URL"].startswith("smtp://")
    # The container runs the worker model README sizes the database for (workers x (5 + threads)).
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "gunicorn --workers 4 --worker-class gthread --threads 4 " in dockerfile
    # Heartbeats in memory, not on the container's overlay file system (gunicorn's own advice).
    assert "--worker-tmp-dir /dev/shm " in dockerfile
