"""Request-edge checks shared by the OAuth endpoints; each raises an Authlib OAuth2Error that the
endpoint answers in the protocol's own words (RFC 6749 4.1.2.1 / 5.2), never a 500."""

from __future__ import annotations

import re

from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidRequestError
from flask import request

from idp.oidc.config import MAX_PARAM_LENGTH, MAX_STATE_LENGTH

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
LONG_PARAMETERS = {"client_assertion": 8192, "request": 16384, "state": MAX_STATE_LENGTH, "logout_token": 8192}


def reject_duplicated_parameters(params) -> None:  # type: ignore[no-untyped-def]
    # RFC 6749 3.1 / 3.2: request and response parameters MUST NOT be included more than once.
    for name in params:
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(f"parameter {name!r} is repeated")


def reject_oversized_parameters(params) -> None:  # type: ignore[no-untyped-def]
    for name, value in params.items(multi=True):
        if len(name) > 64 or len(value) > LONG_PARAMETERS.get(name, MAX_PARAM_LENGTH):
            raise InvalidRequestError(f"parameter {name[:64]!r} is too long")
        if CONTROL_CHARACTERS.search(value):
            raise InvalidRequestError(f"parameter {name[:64]!r} contains control characters")


def require_secure_transport() -> None:
    from idp.oidc.provider import provider

    if not provider().secure_transport:
        raise InsecureTransportError()


def require_form_post() -> None:
    """RFC 6749 3.2: POST with application/x-www-form-urlencoded, parameters in the body only."""
    require_secure_transport()
    if request.method != "POST":
        raise InvalidRequestError("use POST")
    if request.mimetype != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded")
    if request.args:
        raise InvalidRequestError("parameters belong in the body, not the URL")
    reject_duplicated_parameters(request.form)
    reject_oversized_parameters(request.form)


def check_query_parameters() -> None:
    require_secure_transport()
    params = request.values
    reject_duplicated_parameters(params)
    reject_oversized_parameters(params)
