"""A WSGI application that does no work: it reads the request and answers a fixed token response.
Served by the same gunicorn worker as Varco, it gives the HTTP stack's own ceiling on one core."""

from __future__ import annotations

BODY = b'{"access_token":"floor","token_type":"Bearer","expires_in":300}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY))), ("Cache-Control", "no-store")]


def app(environ, start_response):  # type: ignore[no-untyped-def]
    environ["wsgi.input"].read()
    start_response("200 OK", HEADERS)
    return [BODY]
