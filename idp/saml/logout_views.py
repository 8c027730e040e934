"""Single Logout (SAML Profiles 4.4) on the web: SP-initiated logout, and propagation to the other SAML
participants of a session that ends anywhere (``/logout``, another SP, another protocol).

Propagation is front-channel, in hidden iframes: the page that says "you have signed out" (or the page
that carries the LogoutResponse back to the SP that asked) loads ``/saml/slo/notify?t=...`` once per
other SAML participant; each sends the browser's frame to that SP's SingleLogoutService with a signed
LogoutRequest, and the SP's LogoutResponse comes back to ``/saml/slo/*`` in the same frame. The iframe
list is ``g.varco_logout_frames`` (local URLs), a protocol-neutral slot any frontend may fill.
SOAP (back-channel) SLO is not offered: SPs that list only SOAP endpoints are skipped and logged.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from flask import Response, g, has_request_context, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as HttpResponse

from idp.flow.views import end_sso_session
from idp.saml import constants as c
from idp.saml.bindings import IncomingMessage, redirect_url
from idp.saml.errors import (
    CannotRespondError,
    MalformedMessageError,
    ReplayedMessageError,
    SamlRequestError,
    UnknownEndpointError,
)
from idp.saml.frontend import saml_frontend
from idp.saml.pages import (
    bp,
    cannot_respond_page,
    continue_page,
    no_store,
    no_store_page,
    origin_of,
    saml_errors,
    stash,
    unstash,
)
from idp.saml.slo import (
    LogoutRequest,
    build_logout_request,
    build_logout_response,
    parse_logout_request,
    parse_logout_response,
)
from idp.sessions import SSO_COOKIE, current_sso_session
from idp.web import browser_id, services

log = logging.getLogger("varco.saml")

FRAMES = "varco_logout_frames"
FRAME_ORIGINS = "varco_logout_frame_origins"
NOTIFY_TTL = 600
STATUS_UNKNOWN_PRINCIPAL = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"


@bp.get("/slo/redirect")
@saml_errors
def slo_redirect() -> HttpResponse:
    message = IncomingMessage.from_redirect(request.query_string)
    if message.param == "SAMLResponse":
        return accept_logout_response(message)
    return sp_initiated_logout(check_logout_request(message))


@bp.post("/slo/post")
@saml_errors
def slo_post() -> HttpResponse:
    message = IncomingMessage.from_post(request.form.to_dict())
    if message.param == "SAMLResponse":
        return accept_logout_response(message)
    logout = check_logout_request(message)
    # The SSO cookie is SameSite=Lax: a cross-site POST does not carry it, the same-site GET does.
    token = stash("logout", logout_state(logout), saml_frontend().idp.max_request_age_seconds)
    return redirect(url_for(".slo_continue", req=token), 303)


@bp.get("/slo/continue")
@saml_errors
def slo_continue() -> HttpResponse:
    return sp_initiated_logout(logout_from_state(unstash("logout", request.args.get("req"))))


@bp.get("/slo/notify")
@saml_errors
def slo_notify() -> HttpResponse:
    """One hidden frame of logout propagation: a signed LogoutRequest to one SP."""
    frontend = saml_frontend()
    ticket = take_notify_ticket(request.args.get("t"))
    sp = frontend.registry.lookup(ticket["sp"])
    if sp is None:
        raise MalformedMessageError(f"service provider {ticket['sp']!r} is no longer registered")
    outgoing = build_logout_request(
        sp, ticket["name_id"], ticket["name_id_format"], ticket.get("session_index"), frontend.idp
    )
    frontend.services.ephemeral.set(f"saml:slo:sent:{outgoing.message_id}", sp.entity_id, NOTIFY_TTL)
    if outgoing.binding == c.BINDING_HTTP_REDIRECT:
        response = no_store(redirect(redirect_url(outgoing, frontend.idp.signing), 303))
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
        return response
    return continue_page(outgoing, framed=True)


# -- the steps -----------------------------------------------------------------------------------------


def check_logout_request(message: IncomingMessage) -> LogoutRequest:
    frontend = saml_frontend()
    try:
        return parse_logout_request(
            message, idp=frontend.idp, sp_lookup=frontend.registry.lookup, replay_guard=frontend.replay_guard
        )
    except SamlRequestError as error:
        # Answer a LogoutRequest with a LogoutResponse, not with an SSO Response.
        raise LogoutRefused(error, message.binding) from None


class LogoutRefused(Exception):
    def __init__(self, error: SamlRequestError, binding: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.binding = binding


def sp_initiated_logout(logout: LogoutRequest) -> HttpResponse:
    """End the browser's SSO session when it is the one the SP names, then answer the SP."""
    check_slo_endpoint(logout)
    status, sub_status = end_named_session(logout)
    outgoing = build_logout_response(logout, saml_frontend().idp, status, sub_status)
    frames = list(g.get(FRAMES, []))
    if outgoing.binding == c.BINDING_HTTP_REDIRECT and not frames:
        response = no_store(redirect(redirect_url(outgoing, saml_frontend().idp.signing), 303))
    else:
        response = continue_page(outgoing, frames, g.get(FRAME_ORIGINS, set()))
    if status == c.STATUS_SUCCESS:
        response.delete_cookie(SSO_COOKIE, path="/")
    return response


def check_slo_endpoint(logout: LogoutRequest) -> None:
    # Before anything ends: a logout that cannot be answered is refused whole.
    if logout.sp.slo_endpoint() is None:
        raise UnknownEndpointError(f"{logout.sp.entity_id} has no SingleLogoutService endpoint")


def end_named_session(logout: LogoutRequest) -> tuple[str, str | None]:
    session = current_sso_session()
    if session is None:
        return c.STATUS_SUCCESS, None  # nothing left to end (SAML Core 3.7.3.2)
    entry = next(
        (
            p
            for p in services().sessions.participants(session.id)
            if p["protocol"] == "saml" and p["relying_party"] == logout.sp.entity_id
        ),
        None,
    )
    details = entry["details"] if entry else {}
    same_subject = details.get("name_id") == logout.name_id
    same_session = not logout.session_indexes or details.get("session_index") in logout.session_indexes
    if not (entry and same_subject and same_session):
        log.warning("SAML LogoutRequest from %s names a session this browser does not have", logout.sp.entity_id)
        return c.STATUS_REQUESTER, STATUS_UNKNOWN_PRINCIPAL
    g.saml_slo_initiator = logout.sp.entity_id
    end_sso_session(session.id)
    log.info("SSO session ended by a SAML LogoutRequest from %s", logout.sp.entity_id)
    return c.STATUS_SUCCESS, None


def accept_logout_response(message: IncomingMessage) -> HttpResponse:
    """An SP's answer to a LogoutRequest Varco sent from a logout frame."""
    frontend = saml_frontend()
    in_response_to = message.xml(frontend.idp.max_message_bytes).get("InResponseTo") or ""
    expected_sp = frontend.services.ephemeral.take(f"saml:slo:sent:{in_response_to}") if in_response_to else None
    if expected_sp is None:
        raise ReplayedMessageError("LogoutResponse answers no pending LogoutRequest")
    result = parse_logout_response(
        message,
        idp=frontend.idp,
        sp_lookup=lambda entity_id: frontend.registry.lookup(entity_id) if entity_id == expected_sp else None,
        expected_request_id=in_response_to,
    )
    log.info("SAML logout at %s: %s %s", expected_sp, result.status, result.sub_status or "")
    response = no_store(Response(render_template("saml/logged_out_frame.html", success=result.success)))
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'self'; base-uri 'none'"
    return response


# -- propagation ---------------------------------------------------------------------------------------


def propagate_logout(session: Any, participants: list[dict]) -> None:
    """Logout hook: a hidden frame per other SAML participant with a front-channel SLO endpoint."""
    if not has_request_context():
        return
    frontend = saml_frontend()
    initiator = g.get("saml_slo_initiator")
    for participant in participants:
        if participant["protocol"] != "saml" or participant["relying_party"] == initiator:
            continue
        sp = frontend.registry.lookup(participant["relying_party"])
        endpoint = sp.slo_endpoint() if sp is not None else None
        if endpoint is None:
            log.info("SAML logout not propagated to %s: no front-channel SLO endpoint", participant["relying_party"])
            continue
        token = secrets.token_urlsafe(24)
        ticket = {"sp": participant["relying_party"], "browser": browser_id(), **participant["details"]}
        frontend.services.ephemeral.set(f"saml:slo:notify:{token}", json.dumps(ticket), NOTIFY_TTL)
        g.setdefault(FRAMES, []).append(url_for("saml.slo_notify", t=token))
        g.setdefault(FRAME_ORIGINS, set()).add(origin_of(endpoint.location))


def take_notify_ticket(token: str | None) -> dict[str, Any]:
    if not token or len(token) > 64:
        raise MalformedMessageError("missing logout ticket")
    raw = saml_frontend().services.ephemeral.take(f"saml:slo:notify:{token}")
    if raw is None:
        raise MalformedMessageError("logout ticket unknown, expired or already used")
    ticket = json.loads(raw)
    if ticket["browser"] != browser_id():
        raise MalformedMessageError("logout ticket belongs to another browser")
    return ticket


@bp.after_app_request
def allow_logout_frames(response: HttpResponse) -> HttpResponse:
    """Let any page that lists logout frames (e.g. /logout's result) frame the SPs they lead to."""
    origins = g.get(FRAME_ORIGINS)
    if origins and response.mimetype == "text/html":
        csp = response.headers.get("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        if "frame-src" not in csp:
            response.headers["Content-Security-Policy"] = f"{csp}; frame-src 'self' {' '.join(sorted(origins))}"
    return response


@bp.errorhandler(LogoutRefused)
def logout_refused(exc: LogoutRefused) -> HttpResponse:
    error = exc.error
    target = error.target
    stub = LogoutRequest(
        id=target.in_response_to or "",
        sp=target.sp,
        name_id="",
        name_id_format=None,
        session_indexes=(),
        relay_state=target.relay_state,
        binding=exc.binding,
        signed=False,
    )
    try:
        outgoing = build_logout_response(stub, saml_frontend().idp, error.status, error.sub_status)
    except CannotRespondError as cannot:
        return no_store_page(cannot_respond_page(cannot))
    if outgoing.binding == c.BINDING_HTTP_REDIRECT:
        return no_store(redirect(redirect_url(outgoing, saml_frontend().idp.signing), 303))
    return continue_page(outgoing)


def logout_state(logout: LogoutRequest) -> dict[str, Any]:
    return {
        "id": logout.id,
        "sp": logout.sp.entity_id,
        "name_id": logout.name_id,
        "name_id_format": logout.name_id_format,
        "session_indexes": list(logout.session_indexes),
        "relay_state": logout.relay_state,
        "binding": logout.binding,
        "signed": logout.signed,
    }


def logout_from_state(state: dict[str, Any]) -> LogoutRequest:
    sp = saml_frontend().registry.lookup(state["sp"])
    if sp is None:
        raise MalformedMessageError(f"service provider {state['sp']!r} is no longer registered")
    return LogoutRequest(
        id=state["id"],
        sp=sp,
        name_id=state["name_id"],
        name_id_format=state["name_id_format"],
        session_indexes=tuple(state["session_indexes"]),
        relay_state=state["relay_state"],
        binding=state["binding"],
        signed=state["signed"],
    )
