"""What a protocol frontend (OIDC, SAML) calls to get a person authenticated.

    outcome = begin_login(login_request)
    if isinstance(outcome, AuthnResult): issue the code / assertion now (the SSO session satisfies it)
    else: return outcome (a redirect into the login flow; it comes back to login_request.return_to?flow=ID)

    later, at return_to:  found = resume_login(request.args.get("flow"))  ->  (LoginRequest, AuthnResult) | None

A passive request (`prompt=none`, `IsPassive`) that the session cannot satisfy raises LoginRequired, which
the frontend turns into its protocol's error (`login_required`, NoPassive).
"""

from __future__ import annotations

import time

from flask import Response, redirect, url_for

from idp.flow.request import AuthnResult, LoginRequest
from idp.flow.state import FlowState
from idp.mfa import policy
from idp.sessions import SsoSession, current_sso_session
from idp.web import browser_id, services


class LoginRequired(Exception):
    """The request was passive and no live session satisfies it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # login_required | mfa_required


def session_shortfall(request: LoginRequest, session: SsoSession | None) -> str | None:
    """Why the browser's SSO session does not satisfy `request` (None: it does)."""
    svc = services()
    if session is None:
        return "login_required"
    if request.force_authn:
        return "login_required"
    if request.max_age is not None and time.time() - session.auth_time > request.max_age:
        return "login_required"
    account = svc.accounts.get(session.account_id)
    if account is None or account.status != "active":
        return "login_required"
    if policy.request_requires_mfa(request) or policy.account_requires_mfa(account, svc.settings.mfa):
        fresh = session.mfa_at is not None and time.time() - session.mfa_at <= svc.settings.mfa.freshness_hours * 3600
        if not fresh:
            return "mfa_required"
    return None


def begin_login(request: LoginRequest) -> AuthnResult | Response:
    svc = services()
    session = current_sso_session()
    shortfall = session_shortfall(request, session)
    if shortfall is None:
        return AuthnResult(
            subject=session.account_id,
            amr=session.amr,
            acr=session.acr,
            auth_time=session.auth_time,
            session_id=session.id,
        )
    if request.passive:
        raise LoginRequired(shortfall)
    state = svc.flows.start(request, browser_id())
    if session is not None and shortfall == "mfa_required":
        # Step-up: the password already given in this session stands; only the second factor is asked.
        adopt_session(state, session)
        svc.flows.save(state)
    return redirect(url_for("flow.login", flow=state.id), 303)


def adopt_session(state: FlowState, session: SsoSession) -> None:
    state.account_id = session.account_id
    state.amr = list(session.amr)
    state.auth_time = session.auth_time
    state.remember = session.remember
    state.data["session_id"] = session.id
    if session.mfa_at is not None:
        state.data["mfa_at"] = session.mfa_at


def resume_login(flow_id: str | None) -> tuple[LoginRequest, AuthnResult] | None:
    return services().flows.take_result(flow_id, browser_id())
