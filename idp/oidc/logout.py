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

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, Response, g, redirect, render_template, request
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


class LogoutRefused(Exception):
    """The logout request cannot be trusted; the person sees a page and is never redirected."""


@bp.route("/oidc/logout", methods=["GET", "POST"])
def end_session() -> ResponseReturnValue:
    """RP-Initiated Logout 1.0, section 2-3: each check refuses with a page, never a redirect."""
    values = request.values if request.method == "GET" else request.form
    try:
        check_parameters()
        claims = check_id_token_hint(values)
        client = identify_client(values, claims)
        target = check_post_logout_redirect_uri(values, client)
        session = current_sso_session()
        if needs_confirmation(values, claims, session):
            return confirmation_page(values, client)
    except LogoutRefused:
        return render_template("oidc/logout.html", stage="invalid"), 400
    if session is not None:
        end_sso_session(session.id)
    if target:
        state = [("state", values["state"])] if values.get("state") else []
        destination = add_params_to_uri(target, state)
        if g.get("varco_logout_frames"):
            # SAML services of the session are signed out in frames of this page first (front-channel).
            response = Response(render_template("oidc/logout.html", stage="done", continue_url=destination))
        else:
            response = redirect(destination, 303)
    else:
        response = Response(render_template("oidc/logout.html", stage="done"))
    response.delete_cookie(SSO_COOKIE, path="/")
    return response


def check_parameters() -> None:
    try:
        check_query_parameters()
    except OAuth2Error as exc:
        raise LogoutRefused() from exc


def check_id_token_hint(values: Any) -> dict | None:
    hint = values.get("id_token_hint")
    if not hint:
        return None
    claims = verify_id_token_hint(hint)
    if claims is None:
        raise LogoutRefused()
    return claims


def identify_client(values: Any, claims: dict | None) -> Any:
    """The client named by client_id, or the audience of the ID token; both must agree (section 2)."""
    named = values.get("client_id")
    audience = (claims or {}).get("aud")
    if isinstance(audience, list):
        audience = audience[0] if len(audience) == 1 else None
    if named and claims is not None and named != audience:
        raise LogoutRefused()
    client_id = named or audience
    return provider().clients.get(client_id) if client_id else None


def check_post_logout_redirect_uri(values: Any, client: Any) -> str | None:
    # Section 3: only a URI registered for the identified client, compared exactly (no open redirect).
    target = values.get("post_logout_redirect_uri")
    if target and (client is None or target not in client.post_logout_redirect_uris):
        raise LogoutRefused()
    return target


def needs_confirmation(values: Any, claims: dict | None, session: Any) -> bool:
    """Ask the person unless the request proves it comes from an RP of this very session
    (section 2: a logout the person did not ask for is a nuisance attack)."""
    if request.method == "POST" and values.get("confirm") == "yes":
        try:
            consume_form_token(f"oidc-logout:{browser_id()}")
        except FormTokenError as exc:
            raise LogoutRefused() from exc
        return False
    if session is None:
        return False
    return not (claims and claims.get("sid") == provider().sid_for(session.id))


def confirmation_page(values: Any, client: Any) -> ResponseReturnValue:
    kept = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")
    return render_template(
        "oidc/logout.html",
        stage="confirm",
        client=client,
        csrf_token=issue_form_token(f"oidc-logout:{browser_id()}", 900),
        hidden={name: value for name, value in values.items() if name in kept},
    )


def end_sso_session(sso_session_id: str) -> None:
    from idp.flow.views import end_sso_session as end_everywhere

    end_everywhere(sso_session_id)  # runs every frontend's logout hook, ours included
