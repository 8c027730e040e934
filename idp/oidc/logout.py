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
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from idp.oidc.checks import check_query_parameters
from idp.oidc.models import OidcGrant, OidcLogoutDelivery
from idp.oidc.provider import provider
from idp.ops.audit import record
from idp.sessions import SSO_COOKIE, current_sso_session
from idp.store.db import DatabaseUnavailable
from idp.web import FormTokenError, browser_id, consume_form_token, issue_form_token

log = logging.getLogger("varco.oidc.logout")
bp = Blueprint("oidc_logout", __name__, template_folder="templates")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class BackchannelLogout:
    """Deliveries are rows (`OidcLogoutDelivery`) first, sent second: a worker thread started when
    there is something to send takes each due row with a conditional update (so two workers never
    send the same one), signs a fresh logout token, posts it, and deletes the row on 200/204 or
    schedules the next attempt. Rows left by a stopped process are picked up at the next start."""

    RETRY_DELAYS = (2, 10, 60, 300, 1800)  # seconds after each failed attempt; then abandoned
    LEASE = 60  # a taken row is left alone this long by other workers (longer than one attempt)
    TIMEOUT = 5
    BATCH = 20

    def __init__(self, op: Any) -> None:
        self.op = op
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        try:
            if self._pending():
                self._start()
        except (SQLAlchemyError, DatabaseUnavailable):
            log.warning("back-channel logout: could not look for pending deliveries at start")

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
        owed = []
        for client_id in sorted({p["relying_party"] for p in participants if p.get("protocol") == "oidc"}):
            client = self.op.clients.get(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            sub = self.op.subjects.sub(session.account_id, client)
            owed.append(OidcLogoutDelivery(client_id=client_id, sub=sub, sid=sid, attempts=0, due_at=int(time.time())))
        if owed:
            with self.op.services.db.session() as db:
                db.add_all(owed)
            self._start()
        return [delivery.client_id for delivery in owed]

    def revoke_online_grants(self, sid: str) -> None:
        # OIDC Core 11: only offline_access lets tokens outlive the session they were issued in.
        with self.op.services.db.session() as session:
            grants = session.scalars(
                select(OidcGrant).where(OidcGrant.sid == sid, OidcGrant.revoked_at.is_(None))
            ).all()
            online = [g.id for g in grants if "offline_access" not in g.scope.split()]
        for grant_id in online:
            self.op.tokens.revoke_grant(grant_id, "session ended")

    # --- delivery ---------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="varco-backchannel-logout", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """Send what is due; sleep until the next row is due; stop when nothing is left."""
        while True:
            self._wake.clear()
            try:
                self.deliver_due()
                next_due = self._next_due()
            except (SQLAlchemyError, DatabaseUnavailable) as exc:
                log.warning("back-channel logout: database unavailable (%s); trying again shortly", exc)
                next_due = int(time.time()) + 5
            if next_due is None:
                with self._lock:
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            self._wake.wait(max(0.0, next_due - time.time()))

    def deliver_due(self) -> int:
        """One pass over the deliveries that are due now; returns how many were acknowledged."""
        now = int(time.time())
        with self.op.services.db.reader() as db:
            due = db.execute(
                select(OidcLogoutDelivery.id, OidcLogoutDelivery.due_at)
                .where(OidcLogoutDelivery.due_at <= now)
                .order_by(OidcLogoutDelivery.due_at)
                .limit(self.BATCH)
            ).all()
        done = 0
        for delivery_id, due_at in due:
            delivery = self._take(delivery_id, due_at, now)
            if delivery is not None:
                done += self._attempt(delivery)
        return done

    def _take(self, delivery_id: int, due_at: int, now: int) -> OidcLogoutDelivery | None:
        with self.op.services.db.session() as db:
            taken = db.execute(
                update(OidcLogoutDelivery)
                .where(OidcLogoutDelivery.id == delivery_id, OidcLogoutDelivery.due_at == due_at)
                .values(due_at=now + self.LEASE)
            )
            if taken.rowcount != 1:
                return None  # another worker has it
            return db.get(OidcLogoutDelivery, delivery_id)

    def _attempt(self, delivery: OidcLogoutDelivery) -> int:
        client = self.op.clients.get(delivery.client_id)
        error = None
        unregistered = client is None or not client.backchannel_logout_uri
        if unregistered:
            error = "client removed or no longer registered for back-channel logout"
        else:
            token = self.logout_token(client, delivery.sub, delivery.sid)
            try:
                status = post_form(client.backchannel_logout_uri, {"logout_token": token}, self.TIMEOUT)
                if status not in (200, 204):  # Back-Channel Logout 2.8
                    error = f"HTTP {status}"
            except (OSError, ValueError) as exc:
                error = str(exc) or type(exc).__name__
        attempts = delivery.attempts + 1
        with self.op.services.db.session() as db:
            if error is None:
                db.execute(delete(OidcLogoutDelivery).where(OidcLogoutDelivery.id == delivery.id))
                return 1
            if unregistered or attempts > len(self.RETRY_DELAYS):
                db.execute(delete(OidcLogoutDelivery).where(OidcLogoutDelivery.id == delivery.id))
                record(db, "oidc.backchannel_logout_abandoned", "varco", None,
                       {"client_id": delivery.client_id, "attempts": attempts, "error": error[:200]})
                log.error("back-channel logout to %s abandoned after %d attempts: %s",
                          delivery.client_id, attempts, error)
                return 0
            db.execute(
                update(OidcLogoutDelivery)
                .where(OidcLogoutDelivery.id == delivery.id)
                .values(attempts=attempts, last_error=error[:500],
                        due_at=int(time.time()) + self.RETRY_DELAYS[attempts - 1])
            )
        log.warning("back-channel logout to %s failed (attempt %d): %s", delivery.client_id, attempts, error)
        return 0

    def _pending(self) -> bool:
        return self._next_due() is not None

    def _next_due(self) -> int | None:
        with self.op.services.db.reader() as db:
            return db.execute(select(func.min(OidcLogoutDelivery.due_at))).scalar_one_or_none()

    def wait(self, timeout: float = 30) -> None:
        """Until nothing is owed any more (tests, and a graceful stop)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._pending():
            time.sleep(0.05)


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
