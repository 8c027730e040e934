"""client_credentials grants at the token endpoint, answered beneath the web framework.

Machine clients (the captive portal, lab kiosks, the LMS back end calling campus APIs) ask for
client_credentials tokens far more often than people log in, and the framework path (Flask's
request context, Authlib's server, the page hooks) costs about twice what the HTTP stack itself
costs for that request. The token needs no store round trip (tokens.TokenService seals it), so
the framework was most of the work.

This layer answers only a request that the framework path would certainly answer with a token:
HTTP Basic credentials that check out for a confidential client registered for the grant, a
body holding `grant_type=client_credentials` and at most a well-formed `scope` the client may
have, nothing else, no query string. Every other request, including every request that fails
(a wrong secret, an unknown client, a scope it may not have, a duplicated or unknown parameter,
a charset parameter on the content type...), goes on unchanged to the framework path, which
gives the protocol's own error. So this layer never refuses anything itself, and it grants
nothing the framework path would refuse; `tests/oidc/test_fastpath.py` checks both against the
framework path, request by request.

Authlib has no framework-free entry point to its token endpoint (its server needs a framework
request object), which is why these few checks are written out here rather than borrowed.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from idp.oidc.config import MAX_PARAM_LENGTH, SCOPES
from idp.store.db import DatabaseUnavailable
from idp.web import split_plain_form

GRANT = "client_credentials"
# RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), joined by single spaces.
SCOPE_SYNTAX = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")
# Anything longer goes to the framework path, which has the size limits and their messages.
MAX_BODY = 1024
MAX_AUTHORIZATION = 1024
SUPPORTED = frozenset(SCOPES)


class ClientCredentialsFastPath:
    """WSGI middleware around Varco's app; `op` is the OpenIDProvider."""

    def __init__(self, app: Callable, op: Any, path: str, security_headers: Iterable[tuple[str, str]]) -> None:
        self.app = app
        self.op = op
        self.path = path
        self.headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),  # RFC 6749 5.1
            ("Pragma", "no-cache"),
            ("Access-Control-Allow-Origin", "*"),
            *security_headers,
        ]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        body = self._read_body(environ)
        if body is not None:
            try:
                token = self._grant(environ, body)
            except DatabaseUnavailable:
                token = None  # the framework path meets the same fault and answers 503 for it
            if token is not None:
                payload = json.dumps(token, sort_keys=True).encode()
                start_response("200 OK", [*self.headers, ("Content-Length", str(len(payload)))])
                return [payload]
        return self.app(environ, start_response)

    @staticmethod
    def _read_body(environ: dict) -> bytes | None:
        """The body, if it is small and its length is declared; the framework path reads it again."""
        if environ.get("QUERY_STRING") or environ.get("CONTENT_TYPE") != "application/x-www-form-urlencoded":
            return None
        if "HTTP_TRANSFER_ENCODING" in environ:  # the length is the server's business then
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            return None
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _grant(self, environ: dict, body: bytes) -> dict | None:
        if not self.op.secure_transport:
            return None
        params = form_parameters(body)
        if params is None or params.get("grant_type") != GRANT or not set(params) <= {"grant_type", "scope"}:
            return None
        scope = params.get("scope")
        if scope is not None:
            requested = scope.split(" ")
            if not SCOPE_SYNTAX.fullmatch(scope) or len(scope) > MAX_PARAM_LENGTH or "openid" in requested:
                return None
        credentials = basic_credentials(environ.get("HTTP_AUTHORIZATION"))
        if credentials is None:
            return None
        client = self.op.clients.get(credentials[0])
        if (
            client is None
            or client.public
            or not client.check_endpoint_auth_method("client_secret_basic", "token")
            or not client.check_grant_type(GRANT)
            or (scope is not None and not set(requested) <= SUPPORTED.intersection(client.scopes))
            or not client.check_client_secret(credentials[1])
        ):
            return None
        return self.op.tokens.generate(GRANT, client, None, scope, None, False)


def form_parameters(body: bytes) -> dict[str, str] | None:
    """`name=value&...` in plain ASCII, each name once and not empty, each value printable ASCII
    once decoded and not empty; None for anything else."""
    params = split_plain_form(body)
    if params is None or not all(value and value.isascii() and value.isprintable() for value in params.values()):
        return None
    return params


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """RFC 6749 2.3.1: `Basic base64(urlencoded id ":" urlencoded secret)`, strictly; None otherwise."""
    if not header or len(header) > MAX_AUTHORIZATION or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        return None
    try:
        client_id, secret = unquote(client_id, errors="strict"), unquote(secret, errors="strict")
    except UnicodeDecodeError:
        return None
    if not (client_id + secret).isprintable():
        return None
    return client_id, secret
