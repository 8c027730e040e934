"""A stand-in for the SPID, CIE and eIDAS identity providers, for the demo and the tests.

It plays the upstream side only: a page where the tester states which fiscal code the upstream
identity provider asserts. The flow then decides, as it would for a real assertion, whether that
identity is the same person as the local account. Enabled by `[federation] mock_brokers`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from flask import Blueprint, abort, current_app, redirect, render_template, request

from federation.base import UpstreamIdentity

LABELS = {"spid": "SPID", "cie": "CIE", "eidas": "eIDAS"}
FISCAL_CODE = re.compile(r"^[A-Z0-9]{16}$")

bp = Blueprint("mock_strong", __name__, url_prefix="/federation/mock")


@dataclass(frozen=True)
class MockStrongBroker:
    name: str

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def login_url(self, flow_id: str) -> str:
        return f"/federation/mock/{self.name}/login?flow={quote(flow_id)}"


@bp.route("/<broker>/login", methods=["GET", "POST"])
def login(broker: str):  # type: ignore[no-untyped-def]
    enabled = current_app.extensions["varco"].settings.federation.mock_brokers
    if broker not in enabled:
        abort(404)
    flow_id = request.args.get("flow", "")[:64]
    if request.method == "GET":
        return render_template("federation/mock_idp.html", broker=LABELS[broker], flow_id=flow_id, error=None)
    fiscal_code = request.form.get("fiscal_code", "").strip().upper()
    if not FISCAL_CODE.match(fiscal_code):
        return render_template("federation/mock_idp.html", broker=LABELS[broker], flow_id=flow_id, error=True), 400
    identity = UpstreamIdentity(
        broker=broker,
        subject=f"{broker}:{fiscal_code}",
        assertion_id="_" + secrets.token_hex(16),
        # SPID and CIE carry the fiscalNumber as TINIT-<code> (ETSI EN 319 412-1), as the mock does.
        fiscal_code=f"TINIT-{fiscal_code}" if broker in ("spid", "cie") else fiscal_code,
    )
    target = current_app.extensions["varco_upstream_return"](flow_id, identity)
    return redirect(target, 303)
