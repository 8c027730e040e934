"""Errors mapped once, at the edge, to pages: 4xx with a clear message, 503 when a store is down."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, render_template, request
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException

from idp.store.db import DatabaseUnavailable
from idp.store.ephemeral import EphemeralUnavailable

log = logging.getLogger("varco")


def json_error_handler():  # type: ignore[no-untyped-def]
    """The JSON error handler of the API the request is for (the OIDC back channel), if any."""
    paths, handler = current_app.extensions.get("varco_api_errors", ((), None))
    return handler if request.path in paths else None


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if request.path.startswith(("/healthz", "/readyz")):
            return {"status": "error", "error": exc.name}, exc.code
        api_error = json_error_handler()
        if api_error is not None:
            return api_error(exc)
        if request_ctx.url_adapter is None:
            # The Host header could not be bound (werkzeug's BadHost): no URL of a page can be built,
            # so the answer is plain text.
            return Response(f"{exc.code} {exc.name}: {exc.description}\n", exc.code, mimetype="text/plain")
        from idp.flow.messages import message

        special = getattr(exc, "user_message", None)
        return render_template("error.html", code=exc.code, text=message(special) if special else None), exc.code

    @app.errorhandler(EphemeralUnavailable)
    @app.errorhandler(DatabaseUnavailable)
    def store_down(exc: Exception):  # type: ignore[no-untyped-def]
        # Fail closed: nothing is issued and nothing half-written while a store is down.
        which = "ephemeral" if isinstance(exc, EphemeralUnavailable) else "database"
        log.error("%s store unavailable on %s %s: %s", which, request.method, request.path, exc)
        if json_error_handler() is not None:
            # RFC 6749 4.1.2.1's temporarily_unavailable, the nearest the protocol has for this.
            body = {"error": "temporarily_unavailable", "error_description": "try again later"}
            return body, 503, {"Retry-After": "30", "Cache-Control": "no-store"}
        return render_template("unavailable.html"), 503, {"Retry-After": "30"}
