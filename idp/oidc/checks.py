"""Request-edge checks shared by the OAuth endpoints; each raises an Authlib OAuth2Error that the
endpoint answers in the protocol's own words (RFC 6749 4.1.2.1 / 5.2), never a 500."""

from __future__ import annotations

import base64
import binascii
import re

from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidClientError, InvalidRequestError
from flask import request

from idp.oidc.config import MAX_PARAM_LENGTH, MAX_STATE_LENGTH

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
LONG_PARAMETERS = {"client_assertion": 8192, "request": 16384, "state": MAX_STATE_LENGTH, "logout_token": 8192}


def printable(name: str) -> str:
    """A parameter name as it may appear in error_description (RFC 6749 4.1.2.1 character set)."""
    return "".join(ch for ch in name[:64] if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\') or "?"


def reject_duplicated_parameters(params) -> None:  # type: ignore[no-untyped-def]
    # RFC 6749 3.1 / 3.2: request and response parameters MUST NOT be included more than once.
    for name in params:
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(f"parameter {printable(name)} is repeated")


def reject_oversized_parameters(params) -> None:  # type: ignore[no-untyped-def]
    for name, value in params.items(multi=True):
        if len(name) > 64 or len(value) > LONG_PARAMETERS.get(name, MAX_PARAM_LENGTH):
            raise InvalidRequestError(f"parameter {printable(name)} is too long")
        if CONTROL_CHARACTERS.search(value):
            raise InvalidRequestError(f"parameter {printable(name)} contains control characters")


def require_secure_transport() -> None:
    from idp.oidc.provider import provider

    if not provider().secure_transport:
        raise InsecureTransportError()


def require_form_post() -> None:
    """RFC 6749 3.2: POST with application/x-www-form-urlencoded, parameters in the body only."""
    require_secure_transport()
    current = request._get_current_object()  # type: ignore[attr-defined]  # one context lookup
    if current.method != "POST":
        raise InvalidRequestError("use POST")
    if current.mimetype != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded")
    if current.args:
        raise InvalidRequestError("parameters belong in the body, not the URL")
    form = current.form
    reject_duplicated_parameters(form)
    reject_oversized_parameters(form)
    check_basic_credentials()


def check_basic_credentials() -> None:
    """RFC 6749 2.3.1 / RFC 7617: `Basic base64(id:secret)`, or no Authorization header at all."""
    header = request.headers.get("Authorization")
    if header is None:
        return
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip() or len(value) > 2048:
        raise InvalidClientError(status_code=401, description="malformed HTTP Basic client credentials")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClientError(status_code=401, description="malformed HTTP Basic client credentials") from None
    if ":" not in decoded:
        raise InvalidClientError(status_code=401, description="malformed HTTP Basic client credentials")


def check_query_parameters() -> None:
    require_secure_transport()
    params = request.values
    reject_duplicated_parameters(params)
    reject_oversized_parameters(params)
