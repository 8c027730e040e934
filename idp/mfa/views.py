"""/account/security (see, add, remove factors) and /mfa/deactivate (seed 002: "Deactivate 2FA:
access temporarily with credentials only", through a link sent to the personal e-mail)."""

from __future__ import annotations

import hashlib
import secrets
import time

from flask import Blueprint, Response, redirect, render_template, request, url_for

from idp.accounts.identifiers import InvalidInput, check_text
from idp.flow.frontend import adopt_session
from idp.flow.messages import message
from idp.flow.request import LoginRequest
from idp.mail import MailError
from idp.mfa import policy
from idp.mfa.service import MfaError
from idp.sessions import SsoSession, current_sso_session
from idp.web import FormTokenError, browser_id, consume_form_token, issue_form_token, services

bp = Blueprint("mfa", __name__)

LINK_TTL = 3600
LINKS_PER_HOUR = 3


def _fresh(session: SsoSession) -> bool:
    limit = services().settings.mfa.freshness_hours * 3600
    return session.mfa_at is not None and time.time() - session.mfa_at <= limit


def _step_up(session: SsoSession, enrol: bool = False) -> Response:
    """A flow that asks only the second factor (and, with `enrol`, then enrols another one)."""
    svc = services()
    has_factor = svc.mfa.has_factor(session.account_id)
    login_request = LoginRequest(
        return_to=url_for("mfa.security"),
        require_mfa=has_factor,
        protocol_state={"enrol": enrol},
    )
    state = svc.flows.start(login_request, browser_id())
    adopt_session(state, session)
    svc.flows.save(state)
    return redirect(url_for("flow.login", flow=state.id), 303)


@bp.route("/account/security", methods=["GET", "POST"])
def security() -> Response | str | tuple[str, int]:
    svc = services()
    session = current_sso_session()
    if session is None:
        return redirect(url_for("flow.login", next=url_for("mfa.security")), 303)
    account = svc.accounts.get(session.account_id)
    if account is None or account.status != "active":
        return redirect(url_for("flow.login"), 303)
    scope = f"security:{browser_id()}"
    error = None
    codes = None
    if request.method == "POST":
        try:
            consume_form_token(scope)
        except FormTokenError as exc:
            return render_template("message.html", title_code="error", text=message(exc.reason), restart=False), 400
        action = request.form.get("action", "")
        has_factor = svc.mfa.has_factor(account.id)
        if action == "add":
            return _step_up(session, enrol=True)
        # Changing existing factors needs a fresh second factor (OWASP ASVS 2.8, NIST SP 800-63B 6.1.2).
        if has_factor and not _fresh(session):
            return _step_up(session)
        if action == "remove":
            required = policy.account_requires_mfa(account, svc.settings.mfa)
            try:
                svc.mfa.remove(
                    account.id, request.form.get("factor", "")[:64], required=required, actor=account.username
                )
            except MfaError as exc:
                error = message(exc.code)
        elif action == "recovery":
            codes = svc.mfa.new_recovery_codes(account.id, actor=account.username)
        else:
            error = message("unknown_action")
    return render_template(
        "mfa/security.html",
        account=account,
        factors=svc.mfa.factors(account.id),
        recovery_left=svc.mfa.recovery_codes_left(account.id),
        codes=codes,
        error=error,
        csrf_token=issue_form_token(scope, 900),
        deactivated_until=policy.aware(account.mfa_deactivated_until) if policy.deactivated(account) else None,
    ), (400 if error else 200)


def _link_key(token: str) -> str:
    return "mfadeact:" + hashlib.sha256(token.encode()).hexdigest()


@bp.route("/mfa/deactivate", methods=["GET", "POST"])
def deactivate_request() -> str | tuple[str, int]:
    svc = services()
    scope = f"deactivate:{browser_id()}"
    if request.method == "POST":
        try:
            consume_form_token(scope)
        except FormTokenError as exc:
            return render_template("message.html", title_code="error", text=message(exc.reason), restart=False), 400
        typed = request.form.get("username", "")
        try:
            check_text("username", typed, svc.settings.login.max_identifier_length)
        except InvalidInput as exc:
            return render_template(
                "mfa/deactivate.html", csrf_token=issue_form_token(scope, 900), error=message(exc.message)
            ), 400
        account = svc.accounts.find(typed)
        # At most a few links per account per hour: the form must not become a way to flood a mailbox.
        allowed = account is not None and svc.ephemeral.incr(f"mfadeact-sent:{account.id}", 3600) <= LINKS_PER_HOUR
        if allowed and account.personal_email and account.status == "active":
            token = secrets.token_urlsafe(32)
            svc.ephemeral.set(_link_key(token), account.id, LINK_TTL)
            link = svc.settings.server.issuer.rstrip("/") + url_for("mfa.deactivate_confirm", token=token)
            try:
                svc.mailer.send(
                    account.personal_email,
                    "Deactivate two-factor authentication / Disattiva l'autenticazione a due fattori",
                    "To deactivate two-factor authentication temporarily, open this link within one hour:\n"
                    f"{link}\n\nPer disattivare temporaneamente l'autenticazione a due fattori, apri questo "
                    f"collegamento entro un'ora:\n{link}\n\nIf you did not ask for this, ignore this message.\n",
                )
            except MailError:
                svc.ephemeral.delete(_link_key(token))
                return render_template("unavailable.html"), 503
        # The same answer whether or not the account exists (no account enumeration).
        return render_template("mfa/deactivate_sent.html")
    return render_template("mfa/deactivate.html", csrf_token=issue_form_token(scope, 900), error=None)


@bp.route("/mfa/deactivate/<token>", methods=["GET", "POST"])
def deactivate_confirm(token: str) -> str | tuple[str, int]:
    svc = services()
    key = _link_key(token[:100])
    if request.method == "GET":
        # Link scanners in mail systems open links: only the button below uses the link up.
        if svc.ephemeral.get(key) is None:
            return render_template("message.html", title_code="error", text=message("link_invalid"), restart=True), 400
        scope = f"deactivate-confirm:{browser_id()}"
        return render_template("mfa/deactivate_confirm.html", csrf_token=issue_form_token(scope, 900))
    try:
        consume_form_token(f"deactivate-confirm:{browser_id()}")
    except FormTokenError as exc:
        return render_template("message.html", title_code="error", text=message(exc.reason), restart=False), 400
    account_id = svc.ephemeral.take(key)
    if account_id is None:
        return render_template("message.html", title_code="error", text=message("link_invalid"), restart=True), 400
    until = svc.mfa.deactivate(account_id, actor="link:" + account_id)
    return render_template("mfa/deactivated.html", until=until)
