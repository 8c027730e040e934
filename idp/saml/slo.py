"""Single Logout (SAML Profiles 4.4): LogoutRequest in, LogoutResponse out, LogoutRequest to SPs.

The session bookkeeping (which SPs share the session, propagation) belongs to the app; this module
validates and builds the messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lxml import etree

from idp.saml import constants as c
from idp.saml.bindings import IncomingMessage, OutgoingMessage, post_message, redirect_message
from idp.saml.config import IdpConfig
from idp.saml.errors import (
    MalformedMessageError,
    ReplayedMessageError,
    SamlRequestError,
    StaleMessageError,
    UnknownEndpointError,
)
from idp.saml.response import instant, new_id
from idp.saml.signing import sign_enveloped
from idp.saml.sp import Endpoint, ServiceProvider
from idp.saml.sso import (
    ReplayGuard,
    ResponseTarget,
    SpLookup,
    check_destination,
    check_freshness,
    check_issuer,
    check_message_kind,
    check_signature,
    epoch_of_instant,
)
from idp.saml.xml import text_of

_SAML = "{" + c.NS_SAML + "}"
_SAMLP = "{" + c.NS_SAMLP + "}"
_NSMAP = {"samlp": c.NS_SAMLP, "saml": c.NS_SAML}


@dataclass(frozen=True)
class LogoutRequest:
    """A validated LogoutRequest from an SP."""

    id: str
    sp: ServiceProvider
    name_id: str
    name_id_format: str | None
    session_indexes: tuple[str, ...]
    relay_state: str | None
    binding: str
    signed: bool


@dataclass(frozen=True)
class LogoutResult:
    """What an SP answered to Varco's LogoutRequest."""

    in_response_to: str | None
    status: str
    sub_status: str | None

    @property
    def success(self) -> bool:
        return self.status == c.STATUS_SUCCESS


def _slo_endpoint(sp: ServiceProvider) -> Endpoint:
    endpoint = sp.slo_endpoint()
    if endpoint is None:
        raise UnknownEndpointError(f"{sp.entity_id} has no SingleLogoutService endpoint")
    return endpoint


def _expected_destination(message: IncomingMessage, idp: IdpConfig) -> str:
    return idp.slo_redirect_url if message.binding == c.BINDING_HTTP_REDIRECT else idp.slo_post_url


def parse_logout_request(
    message: IncomingMessage,
    *,
    idp: IdpConfig,
    sp_lookup: SpLookup,
    replay_guard: ReplayGuard,
    now: int | None = None,
) -> LogoutRequest:
    """Validate an SP's LogoutRequest (SAML Core 3.7.1, Profiles 4.4.4.1).

    Raises the same CannotRespondError family as ``parse_authn_request``; an unsigned request from an SP
    whose policy requires signed logout raises SignatureError (an unauthenticated logout is a DoS).
    """
    now = int(time.time()) if now is None else now
    root = message.xml(idp.max_message_bytes)
    request_id = check_message_kind(root, "LogoutRequest")
    sp = check_issuer(root, sp_lookup)
    root, signed = check_signature(root, message, sp, required=sp.require_signed_logout)
    check_destination(root, _expected_destination(message, idp), signed=signed)
    check_freshness(epoch_of_instant(root.get("IssueInstant")), idp, now)
    not_on_or_after = root.get("NotOnOrAfter")
    if not_on_or_after is not None and epoch_of_instant(not_on_or_after) < now - idp.clock_skew_seconds:
        raise StaleMessageError("LogoutRequest has expired (NotOnOrAfter)")
    ttl = idp.max_request_age_seconds + 2 * idp.clock_skew_seconds
    if not replay_guard(f"saml:logout:{sp.entity_id}:{request_id}", ttl):
        raise ReplayedMessageError(f"LogoutRequest {request_id!r} was already used")
    name_id_el = root.find(_SAML + "NameID")
    if name_id_el is None:
        endpoint = _slo_endpoint(sp)
        target = ResponseTarget(sp, endpoint.response_location or endpoint.location, request_id, message.relay_state)
        # EncryptedID/BaseID: Varco never issues them, so it cannot have a session for one.
        raise SamlRequestError(target, c.STATUS_REQUESTER, c.STATUS_REQUEST_UNSUPPORTED, "NameID required")
    return LogoutRequest(
        id=request_id,
        sp=sp,
        name_id=text_of(name_id_el) or "",
        name_id_format=name_id_el.get("Format"),
        session_indexes=tuple(text_of(el) or "" for el in root.findall(_SAMLP + "SessionIndex")),
        relay_state=message.relay_state,
        binding=message.binding,
        signed=signed,
    )


def _outgoing(
    sp: ServiceProvider,
    root: etree._Element,
    param: str,
    relay_state: str | None,
    idp: IdpConfig,
    *,
    reply: bool,
) -> OutgoingMessage:
    endpoint = _slo_endpoint(sp)
    url = (endpoint.response_location or endpoint.location) if reply else endpoint.location
    root.set("Destination", url)
    if endpoint.binding == c.BINDING_HTTP_POST:
        sign_enveloped(root, idp.signing)
        return post_message(url, param, etree.tostring(root), relay_state, root.get("ID", ""))
    # HTTP-Redirect: the signature goes in the query string (bindings.redirect_url), never in the XML.
    return redirect_message(url, param, etree.tostring(root), relay_state, root.get("ID", ""))


def build_logout_response(
    request: LogoutRequest,
    idp: IdpConfig,
    status: str = c.STATUS_SUCCESS,
    sub_status: str | None = None,
    *,
    now: float | None = None,
) -> OutgoingMessage:
    """LogoutResponse to the SP's SLO endpoint.

    For HTTP-Redirect, send the browser to ``bindings.redirect_url(msg, idp.signing)``; for HTTP-POST, post
    ``msg.form_fields()`` (already signed in the XML).
    """
    now = time.time() if now is None else now
    root = etree.Element(
        _SAMLP + "LogoutResponse",
        {"ID": new_id(), "Version": "2.0", "IssueInstant": instant(now), "InResponseTo": request.id},
        nsmap=_NSMAP,
    )
    etree.SubElement(root, _SAML + "Issuer").text = idp.entity_id
    status_el = etree.SubElement(root, _SAMLP + "Status")
    code = etree.SubElement(status_el, _SAMLP + "StatusCode", Value=status)
    if sub_status:
        etree.SubElement(code, _SAMLP + "StatusCode", Value=sub_status)
    return _outgoing(request.sp, root, "SAMLResponse", request.relay_state, idp, reply=True)


def build_logout_request(
    sp: ServiceProvider,
    name_id: str,
    name_id_format: str,
    session_index: str | None,
    idp: IdpConfig,
    *,
    relay_state: str | None = None,
    now: float | None = None,
) -> OutgoingMessage:
    """An IdP-initiated LogoutRequest for one SP (SAML Core 3.7.1), valid for the assertion lifetime."""
    now = time.time() if now is None else now
    root = etree.Element(
        _SAMLP + "LogoutRequest",
        {
            "ID": new_id(),
            "Version": "2.0",
            "IssueInstant": instant(now),
            "NotOnOrAfter": instant(now + idp.assertion_lifetime_seconds),
        },
        nsmap=_NSMAP,
    )
    etree.SubElement(root, _SAML + "Issuer").text = idp.entity_id
    attrs = {"Format": name_id_format}
    if name_id_format in (c.NAMEID_PERSISTENT, c.NAMEID_TRANSIENT):
        attrs |= {"NameQualifier": idp.entity_id, "SPNameQualifier": sp.entity_id}
    etree.SubElement(root, _SAML + "NameID", attrs).text = name_id
    if session_index:
        etree.SubElement(root, _SAMLP + "SessionIndex").text = session_index
    return _outgoing(sp, root, "SAMLRequest", relay_state, idp, reply=False)


def parse_logout_response(
    message: IncomingMessage,
    *,
    idp: IdpConfig,
    sp_lookup: SpLookup,
    expected_request_id: str,
    now: int | None = None,
) -> LogoutResult:
    """Validate an SP's LogoutResponse to Varco's LogoutRequest; signature required (Profiles 4.4.4.2)."""
    now = int(time.time()) if now is None else now
    root = message.xml(idp.max_message_bytes)
    check_message_kind(root, "LogoutResponse")
    sp = check_issuer(root, sp_lookup)
    root, signed = check_signature(root, message, sp, required=True)
    check_destination(root, _expected_destination(message, idp), signed=signed)
    check_freshness(epoch_of_instant(root.get("IssueInstant")), idp, now)
    if root.get("InResponseTo") != expected_request_id:
        raise MalformedMessageError("LogoutResponse does not answer the pending LogoutRequest")
    code = root.find(f"{_SAMLP}Status/{_SAMLP}StatusCode")
    if code is None:
        raise MalformedMessageError("LogoutResponse has no StatusCode")
    sub = code.find(_SAMLP + "StatusCode")
    return LogoutResult(root.get("InResponseTo"), code.get("Value", ""), None if sub is None else sub.get("Value"))
