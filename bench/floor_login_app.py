"""The least a password login can be over HTTP: a WSGI application with no framework, no stores
and no flow. GET answers a form with a random token and a browser cookie; POST verifies argon2id
(Varco's default parameters, one hash at a time, each on the same thread as Varco runs them)
against one stored hash and answers 303 with a session cookie. Served by the same gunicorn worker
as Varco, it shows what gunicorn, HTTP and the hash leave for everything else."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

PASSWORD = "Quiet-Harbour-2026"  # the benchmark's own test password
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
STORED = HASHER.hash(PASSWORD)
HASHING = ThreadPoolExecutor(1)
FORM = (
    '<!doctype html><form method="post" action="/login"><input type="hidden" name="csrf_token" value="{token}">'
    '<input name="username"><input name="password" type="password"><button>Sign in</button></form>'
)


def app(environ, start_response):  # type: ignore[no-untyped-def]
    if environ["REQUEST_METHOD"] != "POST":
        body = FORM.format(token=secrets.token_urlsafe(16)).encode()
        browser = ("Set-Cookie", f"b={secrets.token_urlsafe(24)}; HttpOnly; SameSite=Lax")
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body))), browser])
        return [body]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    form = parse_qs(environ["wsgi.input"].read(length).decode())
    try:
        HASHING.submit(HASHER.verify, STORED, form.get("password", [""])[0]).result()
    except VerificationError:
        start_response("401 Unauthorized", [("Content-Length", "0")])
        return [b""]
    cookie = f"s={secrets.token_urlsafe(32)}; HttpOnly; SameSite=Lax"
    start_response("303 See Other", [("Location", "/account"), ("Content-Length", "0"), ("Set-Cookie", cookie)])
    return [b""]
