"""Build SAML Responses for HTTP-POST: success with a signed (maybe encrypted) assertion, or a status.

SAML Profiles 4.1.4.2 (response content) and 4.1.4.5 (POST-specific: the assertion MUST be signed).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from lxml import etree

from idp.saml import constants as c
from idp.saml.attributes import FRIENDLY_BY_URI, pairwise_value, release
from idp.saml.bindings import OutgoingMessage, post_message
from idp.saml.config import IdpConfig
from idp.saml.encryption import encrypt_assertion
from idp.saml.errors import SamlRequestError
from idp.saml.signing import sign_enveloped
from idp.saml.sso import AuthnRequest, ResponseTarget
from idp.saml.subject import SamlSubject

FORCE_AUTHN_TOLERANCE_SECONDS = 2
_NSMAP_P = {"samlp": c.NS_SAMLP, "saml": c.NS_SAML}
_NSMAP_A = {"saml": c.NS_SAML}
_SAML = "{" + c.NS_SAML + "}"
_SAMLP = "{" + c.NS_SAMLP + "}"


def new_id() -> str:
    """An xs:ID (must not start with a digit) with 160 bits of randomness (SAML Core 1.3.4)."""
    return "_" + secrets.token_hex(20)


def instant(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(
    parent: etree._Element,
    tag: str,
    text: str | None = None,
    attrib: dict[str, str] | None = None,
    **attrs: str,
) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib or attrs)
    if text is not None:
        el.text = text
    return el


def name_id_value(fmt: str, subject: SamlSubject, sp_entity_id: str, salt: bytes) -> str:
    """The NameID for ``fmt`` (SAML Core 8.3): persistent is pairwise and stable, transient is random."""
    if fmt == c.NAMEID_PERSISTENT:
        return pairwise_value(salt, sp_entity_id, subject.account_id)
    if fmt == c.NAMEID_TRANSIENT:
        return new_id()
    if fmt == c.NAMEID_EMAIL:
        mail = next(iter(subject.attributes.get("mail", [])), None)
        if not mail:
            raise LookupError("emailAddress NameID requested but the subject has no mail")
        return mail
    return subject.username


def _response_root(target: ResponseTarget, idp: IdpConfig, now: float) -> etree._Element:
    attrs = {"ID": new_id(), "Version": "2.0", "IssueInstant": instant(now), "Destination": target.acs_url}
    if target.in_response_to:
        attrs["InResponseTo"] = target.in_response_to
    root = etree.Element(_SAMLP + "Response", attrs, nsmap=_NSMAP_P)
    _sub(root, _SAML + "Issuer", idp.entity_id)
    return root


def _status(root: etree._Element, status: str, sub_status: str | None, message: str | None) -> None:
    status_el = _sub(root, _SAMLP + "Status")
    code = _sub(status_el, _SAMLP + "StatusCode", Value=status)
    if sub_status:
        _sub(code, _SAMLP + "StatusCode", Value=sub_status)
    if message:
        _sub(status_el, _SAMLP + "StatusMessage", message)


def _check_satisfies(request: AuthnRequest, subject: SamlSubject) -> None:
    """The flow must have met the request; refuse to assert what was not achieved."""
    if subject.acr not in request.acceptable_authn_contexts:
        raise SamlRequestError(
            request.target, c.STATUS_RESPONDER, c.STATUS_NO_AUTHN_CONTEXT, "authentication context not met"
        )
    # SAML Core 3.4.1: ForceAuthn means a fresh authentication, not the existing session.
    # Compared with our own clock (when we received the request), never the SP's IssueInstant.
    if request.force_authn and subject.auth_time < request.received_at - FORCE_AUTHN_TOLERANCE_SECONDS:
        raise SamlRequestError(request.target, c.STATUS_RESPONDER, c.STATUS_AUTHN_FAILED, "re-authentication required")


def build_assertion(request: AuthnRequest, subject: SamlSubject, idp: IdpConfig, *, now: float) -> etree._Element:
    """An unsigned, self-contained saml:Assertion for ``request``'s SP."""
    sp = request.sp
    assertion = etree.Element(
        _SAML + "Assertion",
        {"ID": new_id(), "Version": "2.0", "IssueInstant": instant(now)},
        nsmap=_NSMAP_A,
    )
    _sub(assertion, _SAML + "Issuer", idp.entity_id)
    subject_el = _sub(assertion, _SAML + "Subject")
    try:
        name_id = name_id_value(request.name_id_format, subject, sp.entity_id, idp.name_id_salt)
    except LookupError as exc:
        raise SamlRequestError(request.target, c.STATUS_REQUESTER, c.STATUS_INVALID_NAMEID_POLICY, str(exc)) from None
    name_id_attrs = {"Format": request.name_id_format}
    if request.name_id_format in (c.NAMEID_PERSISTENT, c.NAMEID_TRANSIENT):
        name_id_attrs |= {"NameQualifier": idp.entity_id, "SPNameQualifier": sp.entity_id}
    _sub(subject_el, _SAML + "NameID", name_id, attrib=name_id_attrs)
    confirmation = _sub(subject_el, _SAML + "SubjectConfirmation", Method=c.CM_BEARER)
    expires = instant(now + idp.assertion_lifetime_seconds)
    confirmation_data = {"NotOnOrAfter": expires, "Recipient": request.target.acs_url}
    if request.id:  # absent for IdP-initiated SSO (SAML Profiles 4.1.5)
        confirmation_data["InResponseTo"] = request.id
    _sub(confirmation, _SAML + "SubjectConfirmationData", attrib=confirmation_data)
    conditions = _sub(assertion, _SAML + "Conditions", NotBefore=instant(now - 30), NotOnOrAfter=expires)
    _sub(_sub(conditions, _SAML + "AudienceRestriction"), _SAML + "Audience", sp.entity_id)
    statement = _sub(
        assertion,
        _SAML + "AuthnStatement",
        AuthnInstant=instant(subject.auth_time),
        SessionIndex=subject.session_index,
        SessionNotOnOrAfter=instant(now + idp.session_lifetime_seconds),
    )
    _sub(_sub(statement, _SAML + "AuthnContext"), _SAML + "AuthnContextClassRef", subject.acr)
    released = release(sp, subject.attributes, account_id=subject.account_id, scope=idp.scope, salt=idp.name_id_salt)
    if released:
        attr_statement = _sub(assertion, _SAML + "AttributeStatement")
        for uri, values in released.items():
            attr = _sub(
                attr_statement,
                _SAML + "Attribute",
                Name=uri,
                NameFormat=c.ATTRNAME_FORMAT_URI,
                FriendlyName=FRIENDLY_BY_URI[uri],
            )
            for value in values:
                _sub(attr, _SAML + "AttributeValue", value)
    return assertion


def build_response(
    request: AuthnRequest, subject: SamlSubject, idp: IdpConfig, *, now: float | None = None
) -> OutgoingMessage:
    """A successful Response for HTTP-POST to the request's ACS.

    The assertion is always signed; it is encrypted when the SP has an encryption key and its policy
    allows; the Response itself is signed when the SP's policy says ``sign_response``.
    Raises SamlRequestError (NoAuthnContext, AuthnFailed, InvalidNameIDPolicy) when the subject does not
    satisfy the request; the caller then sends ``build_status_response(err.target, ...)``.
    """
    now = time.time() if now is None else now
    _check_satisfies(request, subject)
    sp = request.sp
    assertion = build_assertion(request, subject, idp, now=now)
    sign_enveloped(assertion, idp.signing)
    root = _response_root(request.target, idp, now)
    _status(root, c.STATUS_SUCCESS, None, None)
    if sp.encryption_certs and sp.encrypt_assertions:
        root.append(encrypt_assertion(assertion, sp))
    else:
        root.append(assertion)
    if sp.sign_response:
        sign_enveloped(root, idp.signing)
    return post_message(
        request.target.acs_url,
        "SAMLResponse",
        etree.tostring(root),
        request.target.relay_state,
        root.get("ID", ""),
    )


def build_status_response(
    target: ResponseTarget,
    idp: IdpConfig,
    status: str,
    sub_status: str | None = None,
    message: str | None = None,
    *,
    now: float | None = None,
) -> OutgoingMessage:
    """A signed error Response (no assertion) for HTTP-POST, e.g. Responder/NoPassive."""
    now = time.time() if now is None else now
    root = _response_root(target, idp, now)
    _status(root, status, sub_status, message)
    sign_enveloped(root, idp.signing)
    return post_message(target.acs_url, "SAMLResponse", etree.tostring(root), target.relay_state, root.get("ID", ""))


def status_response_for(error: SamlRequestError, idp: IdpConfig) -> OutgoingMessage:
    return build_status_response(error.target, idp, error.status, error.sub_status, error.status_message)


def passive_failure(request: AuthnRequest, idp: IdpConfig) -> OutgoingMessage:
    """IsPassive and no usable session: Responder/NoPassive (SAML Core 3.4.1)."""
    return build_status_response(request.target, idp, c.STATUS_RESPONDER, c.STATUS_NO_PASSIVE)
