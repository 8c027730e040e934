"""The SAML blueprint's edge: typed errors mapped once to pages, the auto-POST page and its CSP.

- ``SamlRequestError`` (authentic request, known ACS): a signed status Response POSTed to the SP.
- ``CannotRespondError`` (nowhere trustworthy to answer): an HTML page, 400, the reason logged.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, render_template, request
from werkzeug.wrappers import Response as HttpResponse

from idp.saml import constants as c
from idp.saml.bindings import OutgoingMessage, redirect_url
from idp.saml.errors import CannotRespondError, MalformedMessageError, SamlRequestError, UnknownServiceProviderError
from idp.saml.frontend import saml_frontend
from idp.saml.response import status_response_for

log = logging.getLogger("varco.saml")

bp = Blueprint("saml", __name__, url_prefix="/saml")

STASH_PREFIX = "saml:stash:"


def csp_source(url: str) -> str:
    """``url`` as a CSP source expression (scheme, host, port and path; ';' ',' and spaces escaped)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MalformedMessageError(f"endpoint {url!r} is not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}{quote(parts.path or '/', safe='/%:@!$&()*+=~-._')}"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_csp(form_action: str | None, frame_origins: Iterable[str] = (), *, framed: bool = False) -> str:
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "img-src 'self' data:",
        f"form-action {form_action}" if form_action else "form-action 'self'",
        "frame-ancestors 'self'" if framed else "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
    origins = sorted(set(frame_origins))
    if origins:
        directives.append("frame-src 'self' " + " ".join(origins))
    return "; ".join(directives)


def no_store(response: HttpResponse) -> HttpResponse:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def continue_page(
    message: OutgoingMessage, frames: list[str] | None = None, frame_origins: Iterable[str] = (), *, framed=False
) -> HttpResponse:
    """Deliver ``message``: an auto-submitting form for HTTP-POST (SAML Bindings 3.5.4), a link for
    HTTP-Redirect when logout frames must load first. A tiny script from /static continues on its own;
    the visible Continue button serves browsers without JavaScript."""
    frames = frames or []
    if message.binding == c.BINDING_HTTP_POST:
        url, fields, action = message.url, message.form_fields(), csp_source(message.url)
    else:
        url, fields, action = redirect_url(message, saml_frontend().idp.signing), {}, None
        csp_source(message.url)  # refuse a non-http(s) endpoint here too
    html = render_template("saml/continue.html", url=url, fields=fields, post=bool(fields), frames=frames)
    response = no_store(Response(html))
    response.headers["Content-Security-Policy"] = page_csp(action, frame_origins, framed=framed)
    if framed:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def cannot_respond_page(error: CannotRespondError) -> tuple[str, int]:
    log.warning("SAML request refused on %s %s: %s: %s", request.method, request.path, type(error).__name__, error)
    reason = "unknown_sp" if isinstance(error, UnknownServiceProviderError) else "bad_request"
    return render_template("saml/error.html", reason=reason), 400


def saml_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Map the SAML error types of one endpoint to what the browser gets (never a 500)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except SamlRequestError as error:
            log.info(
                "SAML status response to %s: %s %s %s",
                error.target.sp.entity_id,
                error.status,
                error.sub_status or "",
                error.status_message,
            )
            return continue_page(status_response_for(error, saml_frontend().idp))
        except CannotRespondError as error:
            return no_store_page(cannot_respond_page(error))

    return wrapper


def no_store_page(page: tuple[str, int]) -> HttpResponse:
    return no_store(Response(page[0], page[1]))


def stash(kind: str, data: dict[str, Any], ttl: int) -> str:
    """Keep a validated message server-side under an unguessable, single-use token.

    A cross-site POST carries no SameSite=Lax cookie, so POST-bound requests continue on a same-site
    GET that does (the browser's SSO session and browser id)."""
    token = secrets.token_urlsafe(24)
    saml_frontend().services.ephemeral.set(f"{STASH_PREFIX}{kind}:{token}", json.dumps(data), ttl)
    return token


def unstash(kind: str, token: str | None) -> dict[str, Any]:
    if not token or len(token) > 64:
        raise MalformedMessageError("missing or malformed continuation token")
    raw = saml_frontend().services.ephemeral.take(f"{STASH_PREFIX}{kind}:{token}")
    if raw is None:
        raise MalformedMessageError("continuation token unknown, expired or already used")
    return json.loads(raw)
