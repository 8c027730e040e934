"""A registered SAML service provider, parsed from its metadata (SAML Metadata 2.4.4).

Storage comes from the app; this module only turns trusted metadata XML into a ``ServiceProvider``
value and answers endpoint questions about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from idp.accounts.identifiers import CONTROL_CHARACTERS
from idp.saml import constants as c
from idp.saml.credentials import Certificate, cert_pem_from_b64
from idp.saml.errors import MalformedMessageError
from idp.saml.xml import parse_xml, text_of

MAX_METADATA_BYTES = 1024 * 1024
MAX_ENTITY_ID_LENGTH = 1024  # SAML Core 8.3.6
UNSIGNED_SHORT = re.compile(r"[0-9]{1,5}")  # xs:unsignedShort in ASCII digits (str.isdigit() takes '²' too)
_NS = {"md": c.NS_MD, "ds": c.NS_DS, "mdattr": c.NS_MDATTR, "saml": c.NS_SAML, "mdui": c.NS_MDUI}


@dataclass(frozen=True)
class Endpoint:
    binding: str
    location: str
    index: int | None = None
    is_default: bool | None = None
    response_location: str | None = None


@dataclass(frozen=True)
class RequestedAttribute:
    name: str
    friendly_name: str | None
    required: bool


@dataclass(frozen=True)
class ServiceProvider:
    """What Varco knows and has decided about one SP.

    ``release`` names (friendly names, see attributes.ATTRIBUTES) are the local policy; entity
    categories may add to it only where ``attributes.released_attribute_names`` says so.
    """

    entity_id: str
    acs: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...] = ()
    signing_certs: tuple[Certificate, ...] = ()
    encryption_certs: tuple[Certificate, ...] = ()
    encryption_methods: tuple[str, ...] = ()
    authn_requests_signed: bool = False
    want_assertions_signed: bool = True
    name_id_formats: tuple[str, ...] = ()
    entity_categories: frozenset[str] = frozenset()
    subject_id_req: str | None = None
    requested_attributes: tuple[RequestedAttribute, ...] = ()
    display_name: str | None = None
    # Local policy, not from metadata:
    release: frozenset[str] = frozenset()
    sign_response: bool = False
    encrypt_assertions: bool = True
    require_mfa: bool = False
    require_signed_logout: bool = True

    def acs_for(self, url: str | None, index: int | None) -> Endpoint | None:
        """The HTTP-POST ACS named by URL or index, or the default one (SAML Metadata 2.2.3)."""
        post = [e for e in self.acs if e.binding == c.BINDING_HTTP_POST]
        if url is not None:
            return next((e for e in post if e.location == url), None)
        if index is not None:
            return next((e for e in post if e.index == index), None)
        for candidate in (
            [e for e in post if e.is_default],
            [e for e in post if e.is_default is None],
            post,
        ):
            if candidate:
                return candidate[0]
        return None

    def slo_endpoint(self) -> Endpoint | None:
        """Preferred SLO endpoint: HTTP-POST, then HTTP-Redirect."""
        for binding in (c.BINDING_HTTP_POST, c.BINDING_HTTP_REDIRECT):
            found = next((e for e in self.slo if e.binding == binding), None)
            if found is not None:
                return found
        return None


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip() in ("true", "1")


def _index(el: etree._Element, tag: str) -> int | None:
    """An indexed endpoint's ``index`` (SAML Metadata 2.2.3): an xs:unsignedShort, 0 to 65535."""
    index = el.get("index")
    if index is None:
        return None
    if not UNSIGNED_SHORT.fullmatch(index) or int(index) > 65535:
        raise MalformedMessageError(f"{tag} index {index[:20]!r} is not a number from 0 to 65535")
    return int(index)


def _endpoints(descriptor: etree._Element, tag: str) -> tuple[Endpoint, ...]:
    found = []
    for el in descriptor.findall(c.q(c.NS_MD, tag)):
        default = el.get("isDefault")
        found.append(
            Endpoint(
                binding=el.get("Binding", ""),
                location=el.get("Location", ""),
                index=_index(el, tag),
                is_default=None if default is None else _bool(default, False),
                response_location=el.get("ResponseLocation"),
            )
        )
    return tuple(found)


def _certs(descriptor: etree._Element, use: str) -> tuple[Certificate, ...]:
    certs = []
    for kd in descriptor.findall("md:KeyDescriptor", _NS):
        if kd.get("use") not in (None, use):
            continue
        for x509 in kd.findall(".//ds:X509Certificate", _NS):
            try:
                certs.append(Certificate(cert_pem_from_b64(text_of(x509) or "")))
            except ValueError as exc:
                raise MalformedMessageError(f"unreadable certificate in SP metadata: {exc}") from None
    return tuple(certs)


def _encryption_methods(descriptor: etree._Element) -> tuple[str, ...]:
    found = descriptor.xpath(
        "md:KeyDescriptor[not(@use) or @use='encryption']/md:EncryptionMethod/@Algorithm", namespaces=_NS
    )
    return tuple(str(a) for a in found)  # type: ignore[union-attr]


def parse_sp_metadata(xml_bytes: bytes, **policy: object) -> ServiceProvider:
    """Build a ``ServiceProvider`` from one SP EntityDescriptor; ``policy`` sets the local-policy fields.

    The caller is responsible for having verified the metadata's origin (metadata/ package).
    Raises ``MalformedMessageError`` (or ``UnsafeXmlError``) when the XML is not usable SP metadata.
    """
    root = parse_xml(xml_bytes, max_bytes=MAX_METADATA_BYTES)
    if root.tag != c.q(c.NS_MD, "EntityDescriptor"):
        raise MalformedMessageError("SP metadata must be a single md:EntityDescriptor")
    entity_id = root.get("entityID")
    if not entity_id or not entity_id.strip():
        raise MalformedMessageError("EntityDescriptor has no entityID, or a blank one")
    if len(entity_id) > MAX_ENTITY_ID_LENGTH:
        raise MalformedMessageError(f"EntityDescriptor entityID is longer than {MAX_ENTITY_ID_LENGTH} characters")
    if CONTROL_CHARACTERS.search(entity_id):
        raise MalformedMessageError("EntityDescriptor entityID has control characters")
    descriptor = root.find("md:SPSSODescriptor", _NS)
    if descriptor is None:
        raise MalformedMessageError(f"{entity_id} has no SPSSODescriptor")
    if c.NS_SAMLP not in descriptor.get("protocolSupportEnumeration", "").split():
        raise MalformedMessageError(f"{entity_id} does not support SAML 2.0")
    acs = _endpoints(descriptor, "AssertionConsumerService")
    if not any(e.binding == c.BINDING_HTTP_POST for e in acs):
        raise MalformedMessageError(f"{entity_id} has no HTTP-POST AssertionConsumerService")

    categories: set[str] = set()
    subject_id_req = None
    for attr in root.findall("md:Extensions/mdattr:EntityAttributes/saml:Attribute", _NS):
        values = [text_of(v) or "" for v in attr.findall("saml:AttributeValue", _NS)]
        if attr.get("Name") == c.ENTITY_CATEGORY:
            categories.update(values)
        elif attr.get("Name") == c.SUBJECT_ID_REQ and values:
            subject_id_req = values[0]

    requested = tuple(
        RequestedAttribute(
            name=ra.get("Name", ""),
            friendly_name=ra.get("FriendlyName"),
            required=_bool(ra.get("isRequired"), False),
        )
        for ra in descriptor.findall("md:AttributeConsumingService/md:RequestedAttribute", _NS)
    )
    display = descriptor.find("md:Extensions/mdui:UIInfo/mdui:DisplayName", _NS)
    return ServiceProvider(
        entity_id=entity_id,
        acs=acs,
        slo=_endpoints(descriptor, "SingleLogoutService"),
        signing_certs=_certs(descriptor, "signing"),
        encryption_certs=_certs(descriptor, "encryption"),
        encryption_methods=_encryption_methods(descriptor),
        authn_requests_signed=_bool(descriptor.get("AuthnRequestsSigned"), False),
        want_assertions_signed=_bool(descriptor.get("WantAssertionsSigned"), True),
        name_id_formats=tuple(text_of(nf) or "" for nf in descriptor.findall("md:NameIDFormat", _NS)),
        entity_categories=frozenset(categories),
        subject_id_req=subject_id_req,
        requested_attributes=requested,
        display_name=text_of(display),
        **policy,  # type: ignore[arg-type]
    )
