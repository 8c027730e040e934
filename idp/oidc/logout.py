"""RP-initiated logout (OpenID RP-Initiated Logout 1.0) and back-channel logout (OpenID Back-Channel
Logout 1.0): a signed logout token to every client of the ended session, retried on failure."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request
from flask.typing import ResponseReturnValue
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select

from idp.oidc.checks import check_query_parameters
from idp.oidc.models import OidcGrant
from idp.oidc.provider import provider
from idp.sessions import SSO_COOKIE, current_sso_session
from idp.web import FormTokenError, browser_id, consume_form_token, issue_form_token

log = logging.getLogger("varco.oidc.logout")
bp = Blueprint("oidc_logout", __name__, template_folder="templates")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class BackchannelLogout:
    RETRY_DELAYS = (0.0, 1.0, 3.0, 10.0)
    TIMEOUT = 5

    def __init__(self, op: Any) -> None:
        self.op = op
        self._threads: list[threading.Thread] = []

    def logout_token(self, client: Any, sub: str, sid: str | None) -> str:
        key, jwk = self.op.keys.active("RSA")
        now = int(time.time())
        claims = {
            "iss": self.op.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
            "sub": sub,
            "events": {BACKCHANNEL_EVENT: {}},
        }
        if sid:
            claims["sid"] = sid
        return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": "logout+jwt"}, claims, jwk)

    def session_ended(self, session: Any, participants: list[dict]) -> list[str]:
        """The logout hook (idp.flow.views.end_sso_session): notify every OIDC client of the session
        and revoke its grants that were not for offline access. Returns the client ids notified."""
        sid = self.op.sid_for(session.id)
        self.revoke_online_grants(sid)
        notified = []
        for client_id in sorted({p["relying_party"] for p in participants if p.get("protocol") == "oidc"}):
            client = self.op.clients.get(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            token = self.logout_token(client, self.op.subjects.sub(session.account_id, client), sid)
            self.deliver(client.backchannel_logout_uri, token)
            notified.append(client_id)
        return notified

    def revoke_online_grants(self, sid: str) -> None:
        # OIDC Core 11: only offline_access lets tokens outlive the session they were issued in.
        with self.op.services.db.session() as session:
            grants = session.scalars(
                select(OidcGrant).where(OidcGrant.sid == sid, OidcGrant.revoked_at.is_(None))
            ).all()
            online = [g.id for g in grants if "offline_access" not in g.scope.split()]
        for grant_id in online:
            self.op.tokens.revoke_grant(grant_id, "session ended")

    def deliver(self, uri: str, token: str) -> None:
        thread = threading.Thread(target=self._send, args=(uri, token), daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _send(self, uri: str, token: str) -> None:
        for attempt, delay in enumerate(self.RETRY_DELAYS, 1):
            time.sleep(delay)
            try:
                status = post_form(uri, {"logout_token": token}, self.TIMEOUT)
                if status in (200, 204):  # Back-Channel Logout 2.8
                    return
                log.warning("back-channel logout to %s: HTTP %s (attempt %d)", uri, status, attempt)
            except (OSError, ValueError) as exc:
                log.warning("back-channel logout to %s failed (attempt %d): %s", uri, attempt, exc)
        log.error("back-channel logout to %s abandoned after %d attempts", uri, len(self.RETRY_DELAYS))

    def wait(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # Back-Channel Logout 2.8: a redirect is not a success


def post_form(uri: str, data: dict[str, str], timeout: float) -> int:
    body = urllib.parse.urlencode(data).encode()
    request_ = urllib.request.Request(uri, data=body, method="POST",  # noqa: S310 - registered https/loopback URI
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(request_, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def verify_id_token_hint(hint: str) -> dict | None:
    """Our own ID token, expired or not (RP-Initiated Logout 2: it need not be current)."""
    keys = provider().keys.verification_set()
    try:
        token = jwt.decode(hint, keys, algorithms=["RS256", "ES256"])
    except (JoseError, ValueError):
        return None
    claims = token.claims
    return claims if claims.get("iss") == provider().issuer else None


@bp.route("/oidc/logout", methods=["GET", "POST"])
def end_session() -> ResponseReturnValue:
    op = provider()
    try:
        check_query_parameters()
    except Exception:  # noqa: BLE001 - any malformed input: no redirect, just the page
        return render_template("oidc/logout.html", stage="invalid"), 400
    values = request.values if request.method == "GET" else request.form
    hint = values.get("id_token_hint")
    claims = verify_id_token_hint(hint) if hint else None
    if hint and claims is None:
        return render_template("oidc/logout.html", stage="invalid"), 400
    client_id = values.get("client_id") or (claims or {}).get("aud")
    if isinstance(client_id, list):
        client_id = client_id[0] if len(client_id) == 1 else None
    client = op.clients.get(client_id) if client_id else None
    if claims and values.get("client_id") and values.get("client_id") != claims.get("aud"):
        return render_template("oidc/logout.html", stage="invalid"), 400
    target = values.get("post_logout_redirect_uri")
    # Only a URI registered exactly for the identified client: no open redirect.
    if target and (client is None or target not in client.post_logout_redirect_uris):
        return render_template("oidc/logout.html", stage="invalid"), 400
    session = current_sso_session()
    scope = f"oidc-logout:{browser_id()}"
    if request.method == "POST" and values.get("confirm") == "yes":
        try:
            consume_form_token(scope)
        except FormTokenError:
            return render_template("oidc/logout.html", stage="invalid"), 400
    elif session is not None and not (claims and claims.get("sid") == op.sid_for(session.id)):
        # Not proven to come from an RP of this very session: ask the person first.
        return render_template(
            "oidc/logout.html", stage="confirm", client=client, csrf_token=issue_form_token(scope, 900),
            hidden={k: v for k, v in values.items() if k in ("id_token_hint", "client_id",
                                                           "post_logout_redirect_uri", "state")},
        )
    if session is not None:
        end_sso_session(session.id)
    if target:
        params = {"state": values["state"]} if values.get("state") else {}
        from authlib.common.urls import add_params_to_uri

        response = redirect(add_params_to_uri(target, list(params.items())), 303)
    else:
        response = Response(render_template("oidc/logout.html", stage="done"))
    response.delete_cookie(SSO_COOKIE, path="/")
    return response


def end_sso_session(sso_session_id: str) -> None:
    from idp.flow.views import end_sso_session as end_everywhere

    end_everywhere(sso_session_id)  # runs every frontend's logout hook, ours included
