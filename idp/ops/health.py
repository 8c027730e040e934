"""/healthz (the process answers) and /readyz (the database and the ephemeral store answer)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from idp.store.db import DatabaseUnavailable
from idp.store.ephemeral import EphemeralUnavailable
from idp.web import services

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    svc = services()
    checks: dict[str, str] = {}
    try:
        svc.db.ping()
        checks["database"] = "ok"
    except DatabaseUnavailable:
        checks["database"] = "unavailable"
    try:
        svc.ephemeral.ping()
        checks["ephemeral"] = "ok"
    except (EphemeralUnavailable, DatabaseUnavailable):
        checks["ephemeral"] = "unavailable"
    down = sorted(name for name, state in checks.items() if state != "ok")
    body = {"status": "ok" if not down else "unavailable", "checks": checks, "ephemeral_backend": svc.ephemeral.name}
    if down:
        body["down"] = down
    return jsonify(body), (503 if down else 200)
