"""The two ways Varco is served: `varco serve` and gunicorn, over real HTTP."""

from __future__ import annotations

import json
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


def raw_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send `request` byte for byte; the answer's status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # (a body cut short then ends here)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + content_length(answer):
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def chunked(path: str, chunks: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunks


def chunks_of(body: bytes, size: int = 60000) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


@pytest.fixture
def gunicorn_port(instance):
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "--workers", "1", "--worker-class", "gthread", "--threads", "2"]
        + ["--bind", f"127.0.0.1:{port}", "idp.app:create_app()"],
        env={**instance, "VARCO_SERVER_MAX_REQUEST_KIB": "64"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", process) == 200
        yield port
    finally:
        process.terminate()
        _, log = process.communicate(timeout=10)
    # The refusals are answers, not faults: nothing reaches the log as an error.
    assert b"Traceback" not in log and b" ERROR " not in log, log.decode(errors="replace")[-3000:]


def test_a_chunked_body_is_held_to_the_size_limit_and_a_malformed_one_is_a_bad_request(gunicorn_port):
    # Werkzeug alone would cut a chunked body at the limit without a word (a form would lose its
    # later fields), and gunicorn's reader raises for a malformed chunk in the middle of a view.
    port = gunicorn_port
    too_big = b"username=someone&password=secret&pad=" + b"x" * (65 * 1024)
    for path in ("/login", "/logout", "/oidc/token", "/saml/sso/post"):
        status, body = raw_exchange(port, chunked(path, chunks_of(too_big)))
        assert status == 413, (path, body[:200])
        status, body = raw_exchange(port, chunked(path, b"zz\r\nabc\r\n0\r\n\r\n"))
        assert status == 400, (path, body[:200])
        status, body = raw_exchange(port, chunked(path, b"5\r\nabc"))  # cut short: the client went away
        assert status == 400, (path, body[:200])
    status, body = raw_exchange(port, chunked("/oidc/token", b"zz\r\nabc\r\n0\r\n\r\n"))
    assert json.loads(body)["error"] == "invalid_request"
    status, body = raw_exchange(port, chunked("/oidc/token", chunks_of(too_big)))
    assert json.loads(body)["error"] == "invalid_request"
    # A chunked body within the limit is read whole, as one with a Content-Length would be.
    status, body = raw_exchange(port, chunked("/oidc/token", chunks_of(b"grant_type=client_credentials", 7)))
    assert status == 401 and json.loads(body)["error"] == "invalid_client"


def test_the_development_server_refuses_a_body_it_cannot_measure(instance):
    # gunicorn refuses these itself; the development server (varco serve) hands them on.
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "idp.cli", "serve", "--port", str(port)],
        env={**instance, "VARCO_SERVER_MAX_REQUEST_KIB": "64"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", process) == 200
        head = "POST /oidc/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        form = "Content-Type: application/x-www-form-urlencoded\r\n"
        too_big = chunks_of(b"grant_type=client_credentials&pad=" + b"x" * (65 * 1024))
        # A Content-Length beside chunked is overridden (RFC 9112 6.3): the body is still held to the limit.
        both = (head + form + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").encode() + too_big
        status, body = raw_exchange(port, both)
        assert status == 413 and json.loads(body)["error"] == "invalid_request"
        # A coding other than chunked is answered at once (it used to wait for the client to hang up).
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall((head + form + "Transfer-Encoding: gzip\r\n\r\n").encode() + b"\x1f\x8b")
            assert b" 400 " in sock.recv(65536).split(b"\r\n", 1)[0]
        assert raw_exchange(port, chunked("/oidc/token", too_big))[0] == 413
    finally:
        process.terminate()
        process.wait(10)
