"""Varco's own signed IdP metadata (SAML Metadata 2.4.3), with shibmd:Scope and MDUI (it, en)."""

from __future__ import annotations

import time

from lxml import etree

from idp.saml import constants as c
from idp.saml.config import IdpConfig
from idp.saml.credentials import SigningCredential
from idp.saml.response import instant, new_id
from idp.saml.signing import sign_enveloped

_MD = "{" + c.NS_MD + "}"
_NSMAP = {
    "md": c.NS_MD,
    "ds": c.NS_DS,
    "mdui": c.NS_MDUI,
    "shibmd": c.NS_SHIBMD,
    "mdattr": c.NS_MDATTR,
    "saml": c.NS_SAML,
}


def _key_descriptor(parent: etree._Element, use: str, cert_b64: str) -> None:
    kd = etree.SubElement(parent, _MD + "KeyDescriptor", use=use)
    x509 = etree.SubElement(
        etree.SubElement(etree.SubElement(kd, c.q(c.NS_DS, "KeyInfo")), c.q(c.NS_DS, "X509Data")),
        c.q(c.NS_DS, "X509Certificate"),
    )
    x509.text = cert_b64


def build_idp_metadata(
    idp: IdpConfig,
    *,
    valid_for_seconds: int = 7 * 24 * 3600,
    extra_signing: tuple[SigningCredential, ...] = (),
    now: float | None = None,
) -> bytes:
    """Signed EntityDescriptor bytes. ``extra_signing`` publishes rotated keys during their overlap."""
    now = time.time() if now is None else now
    root = etree.Element(
        _MD + "EntityDescriptor",
        {"entityID": idp.entity_id, "ID": new_id(), "validUntil": instant(now + valid_for_seconds)},
        nsmap=_NSMAP,
    )
    ext = etree.SubElement(root, _MD + "Extensions")
    categories = etree.SubElement(
        etree.SubElement(ext, c.q(c.NS_MDATTR, "EntityAttributes")),
        c.q(c.NS_SAML, "Attribute"),
        Name=c.ENTITY_CATEGORY_SUPPORT,
        NameFormat=c.ATTRNAME_FORMAT_URI,
    )
    etree.SubElement(categories, c.q(c.NS_SAML, "AttributeValue")).text = c.EC_RESEARCH_AND_SCHOLARSHIP

    idpsso = etree.SubElement(
        root,
        _MD + "IDPSSODescriptor",
        protocolSupportEnumeration=c.NS_SAMLP,
        WantAuthnRequestsSigned="false",
    )
    idp_ext = etree.SubElement(idpsso, _MD + "Extensions")
    scope = etree.SubElement(idp_ext, c.q(c.NS_SHIBMD, "Scope"), regexp="false")
    scope.text = idp.scope
    ui = etree.SubElement(idp_ext, c.q(c.NS_MDUI, "UIInfo"))
    for lang, text in idp.display_names:
        el = etree.SubElement(ui, c.q(c.NS_MDUI, "DisplayName"))
        el.set(c.q(c.NS_XML, "lang"), lang)
        el.text = text
    for lang, url, width, height in idp.logos:
        el = etree.SubElement(ui, c.q(c.NS_MDUI, "Logo"), height=str(height), width=str(width))
        el.set(c.q(c.NS_XML, "lang"), lang)
        el.text = url

    for credential in (idp.signing, *extra_signing):
        _key_descriptor(idpsso, "signing", credential.cert_b64)
    for cert in idp.encryption_certs:
        _key_descriptor(idpsso, "encryption", cert.b64)
    for binding, url in (
        (c.BINDING_HTTP_REDIRECT, idp.slo_redirect_url),
        (c.BINDING_HTTP_POST, idp.slo_post_url),
    ):
        etree.SubElement(idpsso, _MD + "SingleLogoutService", Binding=binding, Location=url)
    for fmt in c.SUPPORTED_NAMEID_FORMATS:
        etree.SubElement(idpsso, _MD + "NameIDFormat").text = fmt
    for binding, url in (
        (c.BINDING_HTTP_REDIRECT, idp.sso_redirect_url),
        (c.BINDING_HTTP_POST, idp.sso_post_url),
    ):
        etree.SubElement(idpsso, _MD + "SingleSignOnService", Binding=binding, Location=url)

    sign_enveloped(root, idp.signing)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
