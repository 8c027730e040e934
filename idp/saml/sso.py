"""Web Browser SSO: validate an incoming AuthnRequest (SAML Profiles 4.1.4.1) as a pipeline of named checks.

``parse_authn_request`` returns an ``AuthnRequest`` the login flow can act on, or raises:
- a ``CannotRespondError`` subclass when nothing may be sent back (show a local page);
- ``SamlRequestError`` when the SP should get a status response (``build_status_response(err.target,...)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from idp.saml import constants as c
from idp.saml.bindings import IncomingMessage
from idp.saml.config import IdpConfig
from idp.saml.errors import (
    MalformedMessageError,
    ReplayedMessageError,
    SamlRequestError,
    SignatureError,
    StaleMessageError,
    UnknownEndpointError,
    UnknownServiceProviderError,
)
from idp.saml.signing import has_enveloped_signature, verify_enveloped, verify_redirect_signature
from idp.saml.sp import ServiceProvider
from idp.saml.xml import text_of

SpLookup = Callable[[str], ServiceProvider | None]
ReplayGuard = Callable[[str, int], bool]  # (key, ttl_seconds) -> True the first time the key is seen

# Relative strength of the authentication context classes Varco can assert (SAML AuthnContext 3.3.2.2.1).
AUTHN_CONTEXT_RANK = {
    c.AC_UNSPECIFIED: 0,
    c.AC_PASSWORD: 1,
    c.AC_PASSWORD_PROTECTED: 1,
    c.AC_REFEDS_MFA: 2,
}


@dataclass(frozen=True)
class ResponseTarget:
    """Where and to what a response goes: enough to send a status response."""

    sp: ServiceProvider
    acs_url: str
    in_response_to: str | None
    relay_state: str | None


@dataclass(frozen=True)
class AuthnRequest:
    """A validated AuthnRequest, protocol details resolved against the SP's metadata."""

    id: str
    target: ResponseTarget
    binding: str
    signed: bool
    issue_instant: int
    force_authn: bool
    is_passive: bool
    name_id_format: str
    acceptable_authn_contexts: tuple[str, ...] = ()
    authn_context_requested: bool = False
    received_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def sp(self) -> ServiceProvider:
        return self.target.sp

    @property
    def requires_mfa(self) -> bool:
        """True when only multi-factor contexts satisfy the request (or the SP's local policy)."""
        return all(
            AUTHN_CONTEXT_RANK.get(ac, 0) >= AUTHN_CONTEXT_RANK[c.AC_REFEDS_MFA]
            for ac in self.acceptable_authn_contexts
        )


def _bool_attr(value: str | None) -> bool:
    return value in ("true", "1")


def epoch_of_instant(value: str | None) -> int:
    if not value:
        raise MalformedMessageError("IssueInstant is missing")
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise MalformedMessageError(f"IssueInstant {value!r} is not an xs:dateTime") from None


# -- the checks, in order -------------------------------------------------------------------------------


def check_message_kind(root: etree._Element, local_name: str) -> str:
    if root.tag != c.q(c.NS_SAMLP, local_name):
        raise MalformedMessageError(f"expected samlp:{local_name}, got {root.tag}")
    request_id = root.get("ID")
    if not request_id:
        raise MalformedMessageError(f"{local_name} has no ID")
    return request_id


def check_issuer(root: etree._Element, sp_lookup: SpLookup) -> ServiceProvider:
    # SAML Profiles 4.1.4.1: the Issuer element MUST be present.
    issuer = text_of(root.find(c.q(c.NS_SAML, "Issuer")))
    if not issuer:
        raise MalformedMessageError("Issuer is missing")
    sp = sp_lookup(issuer)
    if sp is None:
        raise UnknownServiceProviderError(f"unknown service provider {issuer!r}")
    return sp


def check_signature(
    root: etree._Element, message: IncomingMessage, sp: ServiceProvider, *, required: bool
) -> tuple[etree._Element, bool]:
    """Verify whichever signature the binding carries; return the element to read from and 'signed'."""
    if message.binding == c.BINDING_HTTP_REDIRECT:
        # SAML Bindings 3.4.4.1: Redirect messages are signed over the query string, never in XML.
        if message.is_query_signed:
            verify_redirect_signature(message.raw_query or "", message.param, sp.signing_certs)
            return root, True
        if required:
            raise SignatureError(f"{sp.entity_id} must sign its requests")
        return root, False
    if has_enveloped_signature(root):
        return verify_enveloped(root, sp.signing_certs), True
    if required:
        raise SignatureError(f"{sp.entity_id} must sign its requests")
    return root, False


def check_destination(root: etree._Element, expected: str, *, signed: bool) -> None:
    # SAML Bindings 3.4.5.2 / 3.5.5.2: a signed message MUST carry Destination; any Destination must match.
    destination = root.get("Destination")
    if destination is None and signed:
        raise MalformedMessageError("signed message without Destination")
    if destination is not None and destination != expected:
        raise UnknownEndpointError(f"Destination {destination!r} is not this endpoint")


def check_freshness(issue_instant: int, idp: IdpConfig, now: int) -> None:
    if issue_instant > now + idp.clock_skew_seconds:
        raise StaleMessageError("IssueInstant is in the future")
    if issue_instant < now - idp.max_request_age_seconds - idp.clock_skew_seconds:
        raise StaleMessageError("request is too old")


def check_acs(root: etree._Element, sp: ServiceProvider) -> str:
    """SAML Profiles 4.1.4.1 / Metadata 2.4.4: the ACS must be one the SP registered, HTTP-POST only."""
    url = root.get("AssertionConsumerServiceURL")
    index_attr = root.get("AssertionConsumerServiceIndex")
    if url is not None and index_attr is not None:
        raise MalformedMessageError("AssertionConsumerServiceURL and Index are mutually exclusive")
    binding = root.get("ProtocolBinding")
    if binding is not None and binding != c.BINDING_HTTP_POST:
        raise UnknownEndpointError(f"ProtocolBinding {binding} is not supported; only HTTP-POST")
    index = None
    if index_attr is not None:
        if not index_attr.isdigit():
            raise MalformedMessageError("AssertionConsumerServiceIndex is not an unsigned short")
        index = int(index_attr)
    endpoint = sp.acs_for(url, index)
    if endpoint is None:
        raise UnknownEndpointError(f"ACS {url or index!r} is not registered for {sp.entity_id}")
    return endpoint.location


def check_replay(sp: ServiceProvider, request_id: str, idp: IdpConfig, replay_guard: ReplayGuard) -> None:
    # The key lives as long as a request can be accepted, so a replay always finds it.
    ttl = idp.max_request_age_seconds + 2 * idp.clock_skew_seconds
    if not replay_guard(f"saml:authn:{sp.entity_id}:{request_id}", ttl):
        raise ReplayedMessageError(f"AuthnRequest {request_id!r} was already used")


def check_version(root: etree._Element, target: ResponseTarget) -> None:
    if root.get("Version") != "2.0":
        raise SamlRequestError(target, c.STATUS_VERSION_MISMATCH, message="only SAML 2.0 is supported")


def check_unsupported_features(root: etree._Element, target: ResponseTarget) -> None:
    # A requested Subject means "authenticate this user": Varco lets the user choose, so it declines.
    if root.find(c.q(c.NS_SAML, "Subject")) is not None:
        raise SamlRequestError(target, c.STATUS_RESPONDER, c.STATUS_REQUEST_UNSUPPORTED, "Subject in AuthnRequest")


def resolve_name_id_format(root: etree._Element, target: ResponseTarget) -> str:
    """SAML Core 3.4.1.1 NameIDPolicy against what Varco supports and the SP's metadata prefers."""
    sp = target.sp
    policy = root.find(c.q(c.NS_SAMLP, "NameIDPolicy"))
    requested = policy.get("Format") if policy is not None else None
    qualifier = policy.get("SPNameQualifier") if policy is not None else None
    if qualifier is not None and qualifier != sp.entity_id:
        raise SamlRequestError(
            target, c.STATUS_REQUESTER, c.STATUS_INVALID_NAMEID_POLICY, "affiliations are not supported"
        )
    if requested and requested != c.NAMEID_UNSPECIFIED:
        if requested not in c.SUPPORTED_NAMEID_FORMATS:
            raise SamlRequestError(
                target, c.STATUS_REQUESTER, c.STATUS_INVALID_NAMEID_POLICY, f"{requested} is not supported"
            )
        return requested
    for fmt in sp.name_id_formats:
        if fmt in c.SUPPORTED_NAMEID_FORMATS:
            return fmt
    return c.NAMEID_TRANSIENT


def resolve_authn_context(root: etree._Element, target: ResponseTarget, idp: IdpConfig) -> tuple[tuple[str, ...], bool]:
    """SAML Core 3.3.2.2.1 RequestedAuthnContext: the classes Varco may assert to satisfy it."""
    requested_el = root.find(c.q(c.NS_SAMLP, "RequestedAuthnContext"))
    supported = idp.supported_authn_contexts
    if requested_el is None:
        return supported, False
    if requested_el.find(c.q(c.NS_SAML, "AuthnContextDeclRef")) is not None:
        raise SamlRequestError(target, c.STATUS_RESPONDER, c.STATUS_NO_AUTHN_CONTEXT, "DeclRef unsupported")
    requested = [text_of(el) or "" for el in requested_el.findall(c.q(c.NS_SAML, "AuthnContextClassRef"))]
    comparison = requested_el.get("Comparison", "exact")
    known = [AUTHN_CONTEXT_RANK[r] for r in requested if r in AUTHN_CONTEXT_RANK]
    if comparison == "exact":
        acceptable = tuple(r for r in requested if r in supported)
    elif not known:
        acceptable = ()
    elif comparison == "minimum":
        acceptable = tuple(s for s in supported if AUTHN_CONTEXT_RANK.get(s, -1) >= min(known))
    elif comparison == "better":
        acceptable = tuple(s for s in supported if AUTHN_CONTEXT_RANK.get(s, -1) > min(known))
    elif comparison == "maximum":
        acceptable = tuple(s for s in supported if AUTHN_CONTEXT_RANK.get(s, 99) <= max(known))
    else:
        raise MalformedMessageError(f"Comparison {comparison!r} is not valid")
    if not acceptable:
        raise SamlRequestError(
            target, c.STATUS_RESPONDER, c.STATUS_NO_AUTHN_CONTEXT, "no supported context satisfies it"
        )
    return acceptable, True


def apply_local_mfa_policy(acceptable: tuple[str, ...], target: ResponseTarget) -> tuple[str, ...]:
    """An SP registered with ``require_mfa`` gets only multi-factor contexts, whatever it asked for."""
    if not target.sp.require_mfa:
        return acceptable
    strong = tuple(a for a in acceptable if AUTHN_CONTEXT_RANK.get(a, 0) >= AUTHN_CONTEXT_RANK[c.AC_REFEDS_MFA])
    if not strong:
        raise SamlRequestError(
            target, c.STATUS_RESPONDER, c.STATUS_NO_AUTHN_CONTEXT, "this service requires multi-factor"
        )
    return strong


def parse_authn_request(
    message: IncomingMessage,
    *,
    idp: IdpConfig,
    sp_lookup: SpLookup,
    replay_guard: ReplayGuard,
    now: int | None = None,
) -> AuthnRequest:
    """Validate an AuthnRequest received on HTTP-Redirect or HTTP-POST.

    Raises CannotRespondError subclasses (MalformedMessageError, UnsafeXmlError, MessageTooLargeError,
    UnknownServiceProviderError, SignatureError, UnknownEndpointError, StaleMessageError,
    ReplayedMessageError) or SamlRequestError. Exceptions raised by ``replay_guard`` propagate: a
    replay cache that is down must fail closed.
    """
    now = int(time.time()) if now is None else now
    root = message.xml(idp.max_message_bytes)
    check_message_kind(root, "AuthnRequest")
    sp = check_issuer(root, sp_lookup)
    root, signed = check_signature(root, message, sp, required=sp.authn_requests_signed)
    expected = idp.sso_redirect_url if message.binding == c.BINDING_HTTP_REDIRECT else idp.sso_post_url
    check_destination(root, expected, signed=signed)
    issue_instant = epoch_of_instant(root.get("IssueInstant"))
    check_freshness(issue_instant, idp, now)
    acs_url = check_acs(root, sp)
    request_id = root.get("ID", "")
    check_replay(sp, request_id, idp, replay_guard)
    target = ResponseTarget(sp, acs_url, request_id, message.relay_state)
    check_version(root, target)
    check_unsupported_features(root, target)
    name_id_format = resolve_name_id_format(root, target)
    acceptable, requested = resolve_authn_context(root, target, idp)
    acceptable = apply_local_mfa_policy(acceptable, target)
    return AuthnRequest(
        id=request_id,
        target=target,
        binding=message.binding,
        signed=signed,
        issue_instant=issue_instant,
        force_authn=_bool_attr(root.get("ForceAuthn")),
        is_passive=_bool_attr(root.get("IsPassive")),
        name_id_format=name_id_format,
        acceptable_authn_contexts=acceptable,
        authn_context_requested=requested,
        received_at=now,
    )


def idp_initiated_request(
    sp: ServiceProvider, idp: IdpConfig, *, relay_state: str | None = None, now: int | None = None
) -> AuthnRequest:
    """An unsolicited SSO to ``sp``'s default ACS (SAML Profiles 4.1.5), for ``/saml/init?sp=``.

    Raises UnknownEndpointError when the SP has no HTTP-POST ACS.
    """
    now = int(time.time()) if now is None else now
    acs = sp.acs_for(None, None)
    if acs is None:
        raise UnknownEndpointError(f"{sp.entity_id} has no HTTP-POST AssertionConsumerService")
    target = ResponseTarget(sp, acs.location, None, relay_state)
    name_id_format = next((f for f in sp.name_id_formats if f in c.SUPPORTED_NAMEID_FORMATS), c.NAMEID_TRANSIENT)
    return AuthnRequest(
        id="",
        target=target,
        binding=c.BINDING_HTTP_POST,
        signed=False,
        issue_instant=now,
        force_authn=False,
        is_passive=False,
        name_id_format=name_id_format,
        acceptable_authn_contexts=apply_local_mfa_policy(idp.supported_authn_contexts, target),
        received_at=now,
    )
