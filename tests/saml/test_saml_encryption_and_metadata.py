"""Assertion encryption choices and Varco's own signed IdP metadata."""

from __future__ import annotations

import base64

import pytest
import xmlsec
from lxml import etree
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from saml_testkit import MemoryReplayGuard, authn_request_xml, make_subject, sp_metadata_xml

from idp.saml import constants as c
from idp.saml.bindings import IncomingMessage
from idp.saml.credentials import Certificate
from idp.saml.errors import SignatureError
from idp.saml.metadata import build_idp_metadata
from idp.saml.response import build_response
from idp.saml.signing import verify_enveloped
from idp.saml.sp import parse_sp_metadata
from idp.saml.sso import parse_authn_request
from idp.saml.xml import parse_xml

SP = "https://enc.uni.example/sp"
NS = {
    "md": c.NS_MD,
    "ds": c.NS_DS,
    "mdui": c.NS_MDUI,
    "shibmd": c.NS_SHIBMD,
    "xenc": c.NS_XENC,
    "saml": c.NS_SAML,
}


def _response_for(idp, sp):
    xml = authn_request_xml(SP)
    request = parse_authn_request(
        IncomingMessage.from_post({"SAMLRequest": base64.b64encode(xml).decode()}),
        idp=idp,
        sp_lookup={SP: sp}.get,
        replay_guard=MemoryReplayGuard(),
    )
    return etree.fromstring(build_response(request, make_subject(), idp).xml)


def _decrypt_as_sp(response: etree._Element, sp_key_pem: bytes) -> etree._Element:
    """What the SP does: decrypt EncryptedData with its private key (xmlsec, on the peer's side)."""
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_key_pem, xmlsec.KeyFormat.PEM, None))
    enc_data = response.find(".//xenc:EncryptedData", NS)
    return xmlsec.EncryptionContext(manager).decrypt(enc_data)


@pytest.mark.parametrize(
    ("methods", "expected"),
    [("", c.ENC_AES256_GCM), (f'<md:EncryptionMethod Algorithm="{c.ENC_AES256_CBC}"/>', c.ENC_AES256_CBC)],
    ids=["gcm-by-default", "cbc-when-sp-asks"],
)
def test_assertion_is_encrypted_with_the_content_algorithm_the_sp_can_read(idp, sp_keys, methods, expected) -> None:
    metadata = sp_metadata_xml(SP, sp_keys[1], encryption=True).replace(
        b"</ds:KeyInfo></md:KeyDescriptor><md:Assertion",
        b"</ds:KeyInfo>" + methods.encode() + b"</md:KeyDescriptor><md:Assertion",
    )
    sp = parse_sp_metadata(metadata, release=frozenset({"mail"}))
    response = _response_for(idp, sp)

    assert response.find("saml:Assertion", NS) is None
    assert response.xpath("string(.//xenc:EncryptedData/xenc:EncryptionMethod/@Algorithm)", namespaces=NS) == expected
    assert response.xpath("string(.//xenc:EncryptedKey/xenc:EncryptionMethod/@Algorithm)", namespaces=NS) == (
        c.KEYTRANSPORT_RSA_OAEP
    )
    assertion = _decrypt_as_sp(response, sp_keys[0])
    assert assertion.tag == c.q(c.NS_SAML, "Assertion")
    assert verify_enveloped(assertion, [Certificate(idp.signing.cert_pem)]) is assertion


def test_sp_policy_can_turn_encryption_off_for_an_sp_with_an_encryption_key(idp, sp_keys) -> None:
    sp = parse_sp_metadata(sp_metadata_xml(SP, sp_keys[1], encryption=True), encrypt_assertions=False)
    assert _response_for(idp, sp).find("saml:Assertion", NS) is not None


@pytest.fixture(scope="module")
def metadata(idp) -> bytes:
    return build_idp_metadata(idp, valid_for_seconds=86400, now=1767225600)  # 2026-01-01T00:00:00Z


def test_idp_metadata_is_signed_by_the_idp_key(idp, metadata) -> None:
    root = parse_xml(metadata, max_bytes=1 << 20)
    assert verify_enveloped(root, [Certificate(idp.signing.cert_pem)]) is root
    tampered = parse_xml(metadata.replace(b"sso/post", b"sso/evil"), max_bytes=1 << 20)
    with pytest.raises(SignatureError):
        verify_enveloped(tampered, [Certificate(idp.signing.cert_pem)])


def test_idp_metadata_publishes_endpoints_keys_scope_and_names(idp, metadata) -> None:
    root = parse_xml(metadata, max_bytes=1 << 20)
    idpsso = root.find("md:IDPSSODescriptor", NS)
    assert root.get("validUntil") == "2026-01-02T00:00:00Z"
    assert {(e.get("Binding"), e.get("Location")) for e in idpsso.findall("md:SingleSignOnService", NS)} == {
        (c.BINDING_HTTP_REDIRECT, idp.sso_redirect_url),
        (c.BINDING_HTTP_POST, idp.sso_post_url),
    }
    assert len(idpsso.findall("md:SingleLogoutService", NS)) == 2
    assert [kd.get("use") for kd in idpsso.findall("md:KeyDescriptor", NS)] == ["signing", "encryption"]
    assert idpsso.findtext("md:Extensions/shibmd:Scope", namespaces=NS) == "uni.example"
    names = {el.get(c.q(c.NS_XML, "lang")): el.text for el in idpsso.findall(".//mdui:DisplayName", NS)}
    assert names == {"it": "Università di Esempio", "en": "University of Example"}
    assert {el.get(c.q(c.NS_XML, "lang")) for el in idpsso.findall(".//mdui:Logo", NS)} == {"it", "en"}


def test_python3_saml_reads_the_idp_metadata(idp, metadata) -> None:
    parsed = OneLogin_Saml2_IdPMetadataParser.parse(metadata.decode())
    assert parsed["idp"]["entityId"] == idp.entity_id
    assert parsed["idp"]["singleSignOnService"]["url"] == idp.sso_redirect_url
