"""Device authorization grant (RFC 8628) for lab PCs and kiosks: Authlib's endpoint and grant with
Varco's storage, and the `/device` page where a signed-in person types the code."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint as _DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _DeviceCodeGrant
from authlib.oauth2.rfc8628 import ExpiredTokenError, SlowDownError
from authlib.oauth2.rfc8628.errors import AuthorizationPendingError
from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.oidc.config import AUTH_METHODS, DEVICE_GRANT, DEVICE_POLL_INTERVAL
from idp.oidc.tokens import Subject, new_grant_id, token_hash

USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{8}$")
MAX_CODE_TRIES = 10  # per browser per 15 minutes: user codes are short (RFC 8628 5.1)
MAX_CODE_TRIES_PER_ADDRESS = 50  # per client address: a fresh browser cookie does not reset the count


@dataclass
class DeviceCredential:
    device_hash: str
    client_id: str
    scope: str
    user_code: str
    expires_at: int
    status: str = "pending"  # pending | approved | denied
    subject: dict | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()


class DeviceStore:
    def __init__(self, ephemeral: Any) -> None:
        self.ephemeral = ephemeral

    def save(self, credential: DeviceCredential) -> None:
        # Kept a little past expiry so late polls get `expired_token`, not `invalid_grant`.
        ttl = max(1, credential.expires_at - int(time.time())) + 300
        data = {k: v for k, v in credential.__dict__.items() if k != "device_hash"}
        self.ephemeral.set(f"oidc:device:{credential.device_hash}", json.dumps(data), ttl)

    def by_device_code(self, device_code: str) -> DeviceCredential | None:
        if not device_code or len(device_code) > 256:
            return None
        hashed = token_hash(device_code)
        raw = self.ephemeral.get(f"oidc:device:{hashed}")
        return DeviceCredential(device_hash=hashed, **json.loads(raw)) if raw else None

    def by_user_code(self, user_code: str) -> DeviceCredential | None:
        hashed = self.ephemeral.get(f"oidc:device-user:{user_code}")
        if hashed is None:
            return None
        raw = self.ephemeral.get(f"oidc:device:{hashed}")
        credential = DeviceCredential(device_hash=hashed, **json.loads(raw)) if raw else None
        if credential is None or credential.is_expired() or credential.status != "pending":
            return None
        return credential


def normalise_user_code(value: str) -> str | None:
    code = re.sub(r"[\s-]", "", value or "").upper()[:32]
    return code if USER_CODE.match(code) else None


class DeviceAuthorizationEndpoint(_DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)
    INTERVAL = DEVICE_POLL_INTERVAL

    @property
    def EXPIRES_IN(self) -> int:  # the name Authlib reads
        return self.server.op.settings.oidc.device_code_seconds

    def authenticate_client(self, request: Any) -> Any:
        client = super().authenticate_client(request)
        if not client.check_grant_type(DEVICE_GRANT):
            raise UnauthorizedClientError("The client is not registered for the device grant.")
        return client

    def get_verification_uri(self) -> str:
        return self.server.op.url("device_verification")

    def save_device_credential(self, client_id: str, scope: str | None, data: dict) -> None:
        client = self.server.op.clients.get(client_id)
        credential = DeviceCredential(
            device_hash=token_hash(data["device_code"]),
            client_id=client_id,
            scope=client.get_allowed_scope(scope),
            user_code=data["user_code"].replace("-", ""),
            expires_at=int(time.time()) + self.EXPIRES_IN,
        )
        store = DeviceStore(self.server.op.ephemeral)
        store.save(credential)
        self.server.op.ephemeral.set(
            f"oidc:device-user:{credential.user_code}", credential.device_hash, self.EXPIRES_IN
        )


class DeviceCodeGrant(_DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def query_device_credential(self, device_code: str) -> DeviceCredential | None:
        return DeviceStore(self.server.op.ephemeral).by_device_code(device_code)

    def validate_device_credential(self, credential: DeviceCredential) -> Subject:
        op = self.server.op
        if credential.is_expired():
            raise ExpiredTokenError()  # RFC 8628 3.5
        if credential.status == "denied":
            raise AccessDeniedError()
        if credential.status == "approved":
            # Single use: the first successful poll takes the approval.
            if op.ephemeral.take(f"oidc:device:{credential.device_hash}") is None:
                raise InvalidRequestError("device_code already used")
            assert credential.subject is not None  # set together with status "approved"
            return Subject(**credential.subject, new_grant=True, client=self.request.client)
        # RFC 8628 3.5: polling faster than the interval is answered with slow_down.
        if not op.ephemeral.add(f"oidc:device-poll:{credential.device_hash}", "1", DEVICE_POLL_INTERVAL):
            raise SlowDownError()
        raise AuthorizationPendingError()


# --- the /device page -------------------------------------------------------------------------
bp = Blueprint("oidc_device", __name__, template_folder="templates")


@bp.route("/device", methods=["GET", "POST"])
def device_page() -> ResponseReturnValue:
    from idp.oidc.provider import provider
    from idp.sessions import current_sso_session
    from idp.web import FormTokenError, browser_id, consume_form_token, issue_form_token

    op = provider()
    session = current_sso_session()
    typed = request.values.get("user_code", "")[:64]
    if session is None:
        target = url_for(".device_page", user_code=typed) if typed else url_for(".device_page")
        return redirect(url_for("flow.login", next=target), 303)
    scope = f"oidc-device:{browser_id()}"

    def page(stage: str, status: int = 200, **context: Any) -> tuple[str, int]:
        token = issue_form_token(scope, 900)
        return render_template("oidc/device.html", stage=stage, csrf_token=token, **context), status

    if request.method == "GET":
        return page("enter", user_code=typed)
    try:
        consume_form_token(scope)
    except FormTokenError:
        return page("enter", 400, user_code=typed, error="form")
    throttled = (
        op.ephemeral.incr(f"oidc:device-tries:{browser_id()}", 900) > MAX_CODE_TRIES
        or op.ephemeral.incr(f"oidc:device-tries-addr:{request.remote_addr}", 900) > MAX_CODE_TRIES_PER_ADDRESS
    )
    code = normalise_user_code(typed)
    credential = DeviceStore(op.ephemeral).by_user_code(code) if code and not throttled else None
    if credential is None:
        return page("enter", 400, user_code=typed, error="throttled" if throttled else "unknown")
    client = op.clients.get(credential.client_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "deny"):
        return page("confirm", user_code=code, client=client, scopes=credential.scope.split())
    credential.status = "approved" if decision == "approve" else "denied"
    if decision == "approve":
        credential.subject = {
            "account_id": session.account_id,
            "grant_id": new_grant_id(),
            # The device's tokens do not belong to this browser's session: signing out here
            # does not sign the kiosk out (it is revoked from /account/apps instead).
            "sid": None,
            "auth_time": session.auth_time,
            "acr": session.acr,
            "amr": list(session.amr),
        }
    DeviceStore(op.ephemeral).save(credential)
    op.ephemeral.delete(f"oidc:device-user:{code}")
    return page("done", approved=decision == "approve", client=client)
