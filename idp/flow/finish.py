"""The end of a login, with no web framework in it: the SSO session is created and the flow
hands its result to whoever asked for the login. Used by the login view and by the login fast
path (idp/flow/fastpath.py) alike, so both finish a login the same way."""

from __future__ import annotations

from urllib.parse import urlencode

from idp.flow.request import AuthnResult
from idp.flow.state import FlowState
from idp.flow.steps import ACR_MFA, ACR_SINGLE_FACTOR
from idp.mfa.policy import SECOND_FACTORS
from idp.sessions import SsoSession


def complete_login(svc, state: FlowState, old_sid: str | None) -> tuple[str, SsoSession]:  # type: ignore[no-untyped-def]
    """Create the SSO session for a finished flow; returns where the browser goes next, and the session.

    `old_sid` is the browser's previous SSO session, if it sent one: it ends here."""
    # Session fixation: a login always gets a new session id (OWASP ASVS 3.2.1).
    carried: list[dict] = []
    if old_sid is not None:
        old = svc.sessions.get(old_sid)
        # The same person logging in again (step-up, forced re-authentication) keeps the services
        # of the old session, so a later logout still reaches them.
        if old is not None and old.account_id == state.account_id:
            carried = svc.sessions.participants(old.id)
        svc.sessions.end(old_sid)
    # amr and acr tell the truth: MFA only when a second factor was really given (RFC 8176).
    amr = [method for method in state.amr if method != "mfa"]
    multi = bool(SECOND_FACTORS & set(amr)) and len(amr) >= 2
    if multi:
        amr.append("mfa")
    acr = ACR_MFA if multi or bool({"spid", "cie", "eidas"} & set(amr)) else ACR_SINGLE_FACTOR
    mfa_at = state.data.get("mfa_at") if multi or acr == ACR_MFA else None
    session = svc.sessions.new(state.account_id, tuple(amr), acr, state.auth_time, state.remember, mfa_at)
    result = AuthnResult(
        subject=state.account_id, amr=tuple(amr), acr=acr, auth_time=state.auth_time, session_id=session.id
    )
    # The session and the flow's end are stored together, in one round trip: never one without the other.
    svc.ephemeral.batch([svc.sessions.storing(session), *svc.flows.finishing(state, result)])
    for entry in carried:
        svc.sessions.add_participant(session.id, entry["protocol"], entry["relying_party"], entry["details"])
    target = state.request.return_to
    if state.request.protocol != "local":
        target += ("&" if "?" in target else "?") + urlencode({"flow": state.id})
    return target, session
