"""SAML IdP endpoints: metadata, Web Browser SSO (SAML Profiles 4.1) and IdP-initiated SSO.

Each endpoint reads top to bottom as a short sequence of named steps; errors are typed and mapped once
by ``pages.saml_errors``. Single Logout lives in ``logout_views``.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, redirect, request, url_for
from werkzeug.wrappers import Response as HttpResponse

from idp.flow.frontend import LoginRequired, begin_login, resume_login
from idp.flow.request import AuthnResult
from idp.flow.views import expired_page
from idp.saml import constants as c
from idp.saml.bindings import IncomingMessage
from idp.saml.errors import MalformedMessageError, SamlRequestError, UnknownServiceProviderError
from idp.saml.frontend import (
    SamlFrontend,
    login_request_for,
    request_from_state,
    request_state,
    saml_frontend,
    subject_for,
)
from idp.saml.pages import bp, continue_page, saml_errors, stash, unstash
from idp.saml.response import build_response, name_id_value, passive_failure
from idp.saml.sp import ServiceProvider
from idp.saml.sso import AuthnRequest, idp_initiated_request, parse_authn_request
from idp.saml.subject import SamlSubject
from idp.web import services

log = logging.getLogger("varco.saml")

# SAML Bindings 3.4.3 / 3.5.3: RelayState MUST NOT exceed 80 bytes (enforced where Varco sets it).
MAX_IDP_RELAY_STATE = 80


@bp.get("/metadata")
def metadata() -> HttpResponse:
    response = Response(saml_frontend().metadata(), mimetype="application/samlmetadata+xml")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/sso/redirect")
@saml_errors
def sso_redirect() -> HttpResponse:
    message = IncomingMessage.from_redirect(request.query_string)
    return start_sso(check_authn_request(message))


@bp.post("/sso/post")
@saml_errors
def sso_post() -> HttpResponse:
    message = IncomingMessage.from_post(request.form.to_dict())
    authn = check_authn_request(message)
    token = stash("authn", request_state(authn), saml_frontend().idp.max_request_age_seconds)
    return redirect(url_for(".sso_continue", req=token), 303)


@bp.get("/sso/continue")
@saml_errors
def sso_continue() -> HttpResponse:
    """Same-site continuation of a POST-bound AuthnRequest (see ``pages.stash``)."""
    state = unstash("authn", request.args.get("req"))
    return start_sso(request_from_state(state, saml_frontend().registry))


@bp.get("/sso/resume")
@saml_errors
def sso_resume() -> HttpResponse | tuple[str, int]:
    found = resume_login(request.args.get("flow"))
    if found is None:
        return expired_page()
    login_request, result = found
    if login_request.protocol != "saml":
        return expired_page()  # another frontend's flow: not ours to answer
    authn = request_from_state(login_request.protocol_state["request"], saml_frontend().registry)
    return respond(authn, result)


@bp.get("/init")
@saml_errors
def idp_initiated() -> HttpResponse:
    """IdP-initiated SSO (SAML Profiles 4.1.5): ``/saml/init?sp=ENTITY_ID[&RelayState=...]``."""
    sp = check_known_sp(request.args.get("sp"))
    relay_state = check_idp_relay_state(request.args.get("RelayState"))
    return start_sso(idp_initiated_request(sp, saml_frontend().idp, relay_state=relay_state))


# -- the steps -----------------------------------------------------------------------------------------


def check_authn_request(message: IncomingMessage) -> AuthnRequest:
    frontend = saml_frontend()
    return parse_authn_request(
        message, idp=frontend.idp, sp_lookup=frontend.registry.lookup, replay_guard=frontend.replay_guard
    )


def check_known_sp(entity_id: str | None) -> ServiceProvider:
    if not entity_id:
        raise MalformedMessageError("sp parameter is missing")
    sp = saml_frontend().registry.lookup(entity_id)
    if sp is None:
        raise UnknownServiceProviderError(f"unknown service provider {entity_id!r}")
    return sp


def check_idp_relay_state(relay_state: str | None) -> str | None:
    if relay_state is not None and len(relay_state.encode()) > MAX_IDP_RELAY_STATE:
        raise MalformedMessageError("RelayState is longer than 80 bytes")
    return relay_state or None


def start_sso(authn: AuthnRequest) -> HttpResponse:
    """Hand the request to the login flow: answer now from the SSO session, or send the browser to log in."""
    try:
        outcome = begin_login(login_request_for(authn))
    except LoginRequired as exc:
        log.info("SAML passive request from %s not satisfied: %s", authn.sp.entity_id, exc.reason)
        return continue_page(passive_failure(authn, saml_frontend().idp))
    if isinstance(outcome, AuthnResult):
        return respond(authn, outcome)
    return outcome


def respond(authn: AuthnRequest, result: AuthnResult) -> HttpResponse:
    """Build the Response for the authenticated account and remember the SP for Single Logout."""
    frontend = saml_frontend()
    idp = frontend.idp
    account = services().accounts.get(result.subject)
    if account is None or account.status != "active":
        raise SamlRequestError(authn.target, c.STATUS_RESPONDER, c.STATUS_AUTHN_FAILED, "account not available")
    session_index = frontend.session_index(result.session_id)
    subject = subject_for(account, result, authn, scope=idp.scope, session_index=session_index)
    name_id = make_name_id(authn, subject, frontend)
    outgoing = build_response(authn, subject, idp, name_id=name_id)
    services().sessions.add_participant(
        result.session_id,
        "saml",
        authn.sp.entity_id,
        {"name_id": name_id, "name_id_format": authn.name_id_format, "session_index": session_index},
    )
    log.info(
        "SAML assertion for account %s to %s (%s, %s)",
        account.id,
        authn.sp.entity_id,
        subject.acr,
        "unsolicited" if not authn.id else f"in response to {authn.id}",
    )
    return continue_page(outgoing)


def make_name_id(authn: AuthnRequest, subject: SamlSubject, frontend: SamlFrontend) -> str:
    try:
        return name_id_value(authn.name_id_format, subject, authn.sp.entity_id, frontend.idp.name_id_salt)
    except LookupError as exc:
        raise SamlRequestError(authn.target, c.STATUS_REQUESTER, c.STATUS_INVALID_NAMEID_POLICY, str(exc)) from None


def init_app(app: Flask) -> None:
    """Register the SAML endpoints, the per-process frontend and the Single Logout hook."""
    from idp.saml import logout_views

    app.extensions["varco_saml"] = SamlFrontend(app.extensions["varco"])
    app.register_blueprint(bp)
    app.extensions.setdefault("varco_logout_hooks", []).append(logout_views.propagate_logout)
