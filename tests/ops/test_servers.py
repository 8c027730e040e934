"""The two ways Varco is served: `varco serve` and gunicorn, over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen) -> int:
    for _ in range(150):
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not answer")


@pytest.fixture
def instance(tmp_path, settings):
    env = {
        **os.environ,
        "VARCO_HOME": str(tmp_path),
        "VARCO_DATABASE_URL": settings.database_url,
        "VARCO_REDIS_URL": settings.redis.url,
        "VARCO_REDIS_PREFIX": settings.redis.prefix,
    }
    subprocess.run([sys.executable, "-m", "idp.cli", "init"], env=env, check=True, capture_output=True)
    return env


def test_varco_serve_answers_on_the_chosen_port(instance):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "idp.cli", "serve", "--port", str(port)],
        env=instance,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", process) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
            assert 'name="username"' in response.read().decode()
    finally:
        process.terminate()
        process.wait(10)


def test_gunicorn_serves_the_app_factory(instance):
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "idp.app:create_app()"],
        env=instance,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", process) == 200
    finally:
        process.terminate()
        process.wait(10)
