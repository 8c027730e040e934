"""Consent for clients that are not first-party, remembered per client and scope set, and the
`/account/apps` page where people see where they are signed in and withdraw consent."""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from idp.oidc.models import OidcConsent, OidcGrant
from idp.oidc.provider import provider
from idp.oidc.tokens import Subject
from idp.ops.audit import record
from idp.sessions import current_sso_session
from idp.store.models import utcnow
from idp.web import FormTokenError, browser_id, consume_form_token, issue_form_token

bp = Blueprint("oidc_consent", __name__, template_folder="templates")
CONSENT_TTL = 600


def consent_covers(client: Any, account_id: str, scopes: list[str], prompts: set[str]) -> bool:
    if "consent" in prompts:
        return False
    if client.first_party:
        return True
    with provider().services.db.session() as session:
        row = session.get(OidcConsent, (account_id, client.client_id))
        return row is not None and set(scopes) <= set(row.scopes)


def start_consent(
    params: dict[str, str], client: Any, subject: Subject, scopes: list[str], sso_session_id: str
) -> tuple[str, int]:
    op = provider()
    pending_id = secrets.token_urlsafe(18)
    pending = {"params": params, "subject": subject_dict(subject), "browser": browser_id()}
    op.ephemeral.set(f"oidc:consent:{pending_id}", json.dumps(pending), CONSENT_TTL)
    token = issue_form_token(f"oidc-consent:{pending_id}", CONSENT_TTL)
    return render_template("oidc/consent.html", client=client, scopes=scopes, pending=pending_id, csrf_token=token), 200


def subject_dict(subject: Subject) -> dict[str, Any]:
    return {
        "account_id": subject.account_id,
        "grant_id": subject.grant_id,
        "sid": subject.sid,
        "auth_time": subject.auth_time,
        "acr": subject.acr,
        "amr": list(subject.amr),
    }


@bp.route("/oidc/consent", methods=["POST"])
def decide() -> ResponseReturnValue:
    from authlib.oauth2.rfc6749.errors import AccessDeniedError

    from idp.oidc.authorize import AuthorizationError, error_page, error_response, issue_code

    op = provider()
    pending_id = request.form.get("pending", "")[:64]
    try:
        consume_form_token(f"oidc-consent:{pending_id}")
    except FormTokenError:
        return error_page(AuthorizationError("login_expired", "The consent form expired or was already used."))
    raw = op.ephemeral.take(f"oidc:consent:{pending_id}")
    pending = json.loads(raw) if raw else None
    if pending is None or pending["browser"] != browser_id():
        return error_page(AuthorizationError("login_expired", "The consent form expired or was already used."))
    params = pending["params"]
    client = op.clients.get(params["client_id"])
    if client is None:
        return error_page(AuthorizationError("invalid_client", "The client is no longer registered."))
    if request.form.get("decision") != "approve":
        error = AccessDeniedError("the person declined")
        error.redirect_uri = params["redirect_uri"]
        return error_response(error, params.get("state"))
    subject = Subject(**pending["subject"])
    session = current_sso_session()
    if session is None or session.account_id != subject.account_id:
        return error_page(AuthorizationError("login_expired", "The session ended before consent was given."))
    scopes = client.get_allowed_scope(params.get("scope")).split()
    remember_consent(subject.account_id, client.client_id, scopes)
    return issue_code(params, subject, session.id)


def remember_consent(account_id: str, client_id: str, scopes: list[str]) -> None:
    with provider().services.db.session() as session:
        row = session.get(OidcConsent, (account_id, client_id))
        record(session, "oidc.consent.given", account_id, account_id, {"client_id": client_id, "scopes": scopes})
        if row is None:
            session.add(OidcConsent(account_id=account_id, client_id=client_id, scopes=sorted(set(scopes))))
        else:
            row.scopes = sorted(set(row.scopes) | set(scopes))
            row.granted_at = utcnow()


# --- /account/apps ---------------------------------------------------------------------------
@bp.route("/account/apps", methods=["GET", "POST"])
def account_apps() -> ResponseReturnValue:
    op = provider()
    session = current_sso_session()
    if session is None:
        return redirect(url_for("flow.login", next="/account/apps"), 303)
    scope = f"oidc-apps:{browser_id()}"
    if request.method == "POST":
        try:
            consume_form_token(scope)
        except FormTokenError:
            return redirect(url_for(".account_apps"), 303)
        revoke_client_access(session.account_id, request.form.get("client_id", "")[:128])
        return redirect(url_for(".account_apps"), 303)
    sid = op.sid_for(session.id)
    with op.services.db.session() as db:
        grants = db.scalars(
            select(OidcGrant)
            .where(OidcGrant.account_id == session.account_id, OidcGrant.revoked_at.is_(None))
            .order_by(OidcGrant.created_at.desc())
        ).all()
        consents = db.scalars(select(OidcConsent).where(OidcConsent.account_id == session.account_id)).all()
    apps: dict[str, dict[str, Any]] = {}
    for grant in grants:
        entry = apps.setdefault(grant.client_id, {"client_id": grant.client_id, "this_session": False,
                                                 "last": grant.created_at, "scopes": set(), "consent": False})
        entry["this_session"] = entry["this_session"] or grant.sid == sid
        entry["scopes"].update(grant.scope.split())
    for consent in consents:
        entry = apps.setdefault(consent.client_id, {"client_id": consent.client_id, "this_session": False,
                                                    "last": consent.granted_at, "scopes": set(), "consent": True})
        entry["consent"] = True
        entry["scopes"].update(consent.scopes)
    for entry in apps.values():
        client = op.clients.get(entry["client_id"])
        entry["name"] = client.name if client else entry["client_id"]
        entry["scopes"] = sorted(entry["scopes"])
    return render_template(
        "oidc/apps.html", apps=sorted(apps.values(), key=lambda e: e["name"]), csrf_token=issue_form_token(scope, 900)
    )


def revoke_client_access(account_id: str, client_id: str) -> None:
    """Withdraw consent and revoke every grant (and so every token) the person gave the client."""
    op = provider()
    with op.services.db.session() as session:
        row = session.get(OidcConsent, (account_id, client_id))
        if row is not None:
            session.delete(row)
        record(session, "oidc.consent.withdrawn", account_id, account_id, {"client_id": client_id})
        grant_ids = session.scalars(
            select(OidcGrant.id).where(
                OidcGrant.account_id == account_id, OidcGrant.client_id == client_id, OidcGrant.revoked_at.is_(None)
            )
        ).all()
    for grant_id in grant_ids:
        op.tokens.revoke_grant(grant_id, "revoked by the person")
