"""Hostile and broken AuthnRequests: each one is refused with its specific typed error."""

from __future__ import annotations

import base64
import copy
import random
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import etree
from onelogin_peer import OneLoginSP
from saml_testkit import MemoryReplayGuard, authn_request_xml, sp_metadata_xml

from idp.saml import constants as c
from idp.saml.bindings import IncomingMessage
from idp.saml.credentials import SigningCredential
from idp.saml.errors import (
    CannotRespondError,
    MalformedMessageError,
    MessageTooLargeError,
    ReplayedMessageError,
    SamlError,
    SignatureError,
    StaleMessageError,
    UnknownEndpointError,
    UnknownServiceProviderError,
    UnsafeXmlError,
)
from idp.saml.signing import sign_enveloped, verify_enveloped
from idp.saml.sp import parse_sp_metadata
from idp.saml.sso import parse_authn_request
from idp.saml.xml import parse_xml

DATA = Path(__file__).parent.parent / "data" / "saml"
APP = "https://app.uni.example/sp"
APP_ACS = "https://app.uni.example/saml/acs"


@pytest.fixture(scope="module")
def app_sp(sp_keys):
    """An SP that does not sign its requests."""
    return parse_sp_metadata(sp_metadata_xml(APP, sp_keys[1]))


@pytest.fixture(scope="module")
def signing_sp(sp_keys):
    return parse_sp_metadata(sp_metadata_xml(APP + "/signed", sp_keys[1], authn_requests_signed=True))


def _post(xml: bytes) -> IncomingMessage:
    return IncomingMessage.from_post({"SAMLRequest": base64.b64encode(xml).decode()})


def _redirect(xml: bytes) -> IncomingMessage:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(xml) + compressor.flush()
    return IncomingMessage.from_redirect("SAMLRequest=" + quote(base64.b64encode(deflated).decode(), safe=""))


def _parse(idp, message, *sps, guard=None, now=None):
    registry = {sp.entity_id: sp for sp in sps}
    return parse_authn_request(
        message, idp=idp, sp_lookup=registry.get, replay_guard=guard or MemoryReplayGuard(), now=now
    )


def test_well_formed_unsigned_request_from_an_sp_that_need_not_sign_is_accepted(idp, app_sp) -> None:
    request = _parse(idp, _post(authn_request_xml(APP, acs_url=APP_ACS)), app_sp)
    assert (request.target.acs_url, request.signed) == (APP_ACS, False)


def test_unsigned_post_request_from_sp_that_must_sign_is_refused(idp, signing_sp) -> None:
    with pytest.raises(SignatureError):
        _parse(idp, _post(authn_request_xml(signing_sp.entity_id)), signing_sp)


def test_redirect_request_stripped_of_its_signature_is_refused(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = parse_sp_metadata(peer.metadata())
    _, query = peer.redirect_authn_request()
    stripped = "&".join(p for p in query.split("&") if not p.startswith(("Signature=", "SigAlg=")))

    with pytest.raises(SignatureError):
        _parse(idp, IncomingMessage.from_redirect(stripped), sp)


def test_redirect_request_with_relay_state_changed_after_signing_is_refused(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = parse_sp_metadata(peer.metadata())
    _, query = peer.redirect_authn_request()
    tampered = "&".join(
        "RelayState=https%3A%2F%2Fevil.example%2F" if p.startswith("RelayState=") else p for p in query.split("&")
    )

    with pytest.raises(SignatureError):
        _parse(idp, IncomingMessage.from_redirect(tampered), sp)


def test_request_for_an_acs_url_not_in_metadata_is_refused(idp, app_sp) -> None:
    with pytest.raises(UnknownEndpointError):
        _parse(idp, _post(authn_request_xml(APP, acs_url="https://evil.example/acs")), app_sp)


def test_request_for_an_acs_index_not_in_metadata_is_refused(idp, app_sp) -> None:
    with pytest.raises(UnknownEndpointError):
        _parse(idp, _post(authn_request_xml(APP, acs_index=7)), app_sp)


def test_request_from_an_unknown_sp_is_refused(idp, app_sp) -> None:
    with pytest.raises(UnknownServiceProviderError):
        _parse(idp, _post(authn_request_xml("https://stranger.example/sp")), app_sp)


def test_replayed_authn_request_id_is_refused(idp, app_sp) -> None:
    guard = MemoryReplayGuard()
    xml = authn_request_xml(APP, request_id="_once")
    _parse(idp, _post(xml), app_sp, guard=guard)

    with pytest.raises(ReplayedMessageError):
        _parse(idp, _post(xml), app_sp, guard=guard)


def test_request_issued_too_long_ago_is_refused(idp, app_sp) -> None:
    with pytest.raises(StaleMessageError):
        _parse(idp, _post(authn_request_xml(APP, issue_instant="2020-01-01T00:00:00Z")), app_sp)


def test_request_addressed_to_another_endpoint_is_refused(idp, app_sp) -> None:
    xml = authn_request_xml(APP, destination="https://other-idp.example/sso")
    with pytest.raises(UnknownEndpointError):
        _parse(idp, _post(xml), app_sp)


def test_xxe_payload_is_refused_before_any_entity_is_resolved(idp, app_sp, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>'.encode() + authn_request_xml(
        APP, inner=""
    ).replace(b"</saml:Issuer>", b"&xxe;</saml:Issuer>")
    with pytest.raises(UnsafeXmlError):
        _parse(idp, _post(xml), app_sp)


def test_billion_laughs_is_refused(idp, app_sp) -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    xml = f"<!DOCTYPE r [{entities}]>".encode() + authn_request_xml(APP).replace(
        b"</saml:Issuer>", b"&lol9;</saml:Issuer>"
    )
    with pytest.raises(UnsafeXmlError):
        _parse(idp, _post(xml), app_sp)


def test_doctype_hidden_in_utf16_is_refused() -> None:
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode("utf-16")
    with pytest.raises(UnsafeXmlError):
        parse_xml(xml)


def test_message_over_one_megabyte_is_refused(idp, app_sp) -> None:
    padding = "<samlp:Extensions>" + "x" * (1024 * 1024 + 1) + "</samlp:Extensions>"
    with pytest.raises(MessageTooLargeError):
        _parse(idp, _post(authn_request_xml(APP, inner=padding)), app_sp)


def test_deflate_bomb_on_redirect_binding_is_refused_without_inflating_it(idp, app_sp) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = b"".join(compressor.compress(b"A" * (1 << 20)) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 128 * 1024  # 64 MiB inflated from well under the XML size limit
    message = IncomingMessage.from_redirect("SAMLRequest=" + quote(base64.b64encode(bomb).decode(), safe=""))

    with pytest.raises(MessageTooLargeError):
        _parse(idp, message, app_sp)


def test_garbage_instead_of_base64_is_refused(idp, app_sp) -> None:
    with pytest.raises(MalformedMessageError):
        _parse(idp, IncomingMessage.from_post({"SAMLRequest": "%%% not base64 %%%"}), app_sp)


def test_comment_injected_into_issuer_is_refused(idp, app_sp) -> None:
    xml = authn_request_xml(APP + "<!---->.evil.example")
    with pytest.raises(UnsafeXmlError):
        _parse(idp, _post(xml), app_sp)


def test_comment_injected_into_a_validly_signed_issuer_is_refused(idp) -> None:
    golden_sp = parse_sp_metadata((DATA / "sp-metadata.xml").read_bytes())
    xml = (DATA / "authn-request-comment-signed.xml").read_bytes()
    # The signature itself is valid: exclusive C14N ignores the comment. The refusal must not rely on it.
    root = parse_xml(xml)
    assert verify_enveloped(root, golden_sp.signing_certs) is root

    with pytest.raises(UnsafeXmlError):
        _parse(idp, _post(xml), golden_sp)


def test_signed_request_moved_inside_an_unsigned_one_is_refused(idp) -> None:
    golden_sp = parse_sp_metadata((DATA / "sp-metadata.xml").read_bytes())
    wrapped = (DATA / "authn-request-wrapped.xml").read_bytes()
    with pytest.raises(SignatureError):
        _parse(idp, _post(wrapped), golden_sp, now=1768471200)


def test_signature_moved_to_an_unsigned_outer_request_is_refused(idp, sp_keys, signing_sp) -> None:
    signed = etree.fromstring(authn_request_xml(signing_sp.entity_id, request_id="_good", acs_url=APP_ACS))
    sign_enveloped(signed, SigningCredential(*sp_keys))
    evil = etree.fromstring(authn_request_xml(signing_sp.entity_id, request_id="_evil", acs_url=APP_ACS))
    signature = signed.find(c.q(c.NS_DS, "Signature"))
    evil.insert(1, signature)  # the signature now sits in the evil root but still references #_good
    etree.SubElement(evil, c.q(c.NS_SAMLP, "Extensions")).append(signed)

    with pytest.raises(SignatureError, match="does not reference"):
        _parse(idp, _post(etree.tostring(evil)), signing_sp)


def test_duplicate_id_shadowing_the_signed_request_is_refused(idp, sp_keys, signing_sp) -> None:
    signed = etree.fromstring(authn_request_xml(signing_sp.entity_id, request_id="_dup", acs_url=APP_ACS))
    sign_enveloped(signed, SigningCredential(*sp_keys))
    evil = copy.deepcopy(signed)
    evil.set("AssertionConsumerServiceURL", "https://evil.example/acs")
    etree.SubElement(evil, c.q(c.NS_SAMLP, "Extensions")).append(signed)

    with pytest.raises(SignatureError):
        _parse(idp, _post(etree.tostring(evil)), signing_sp)


def test_random_byte_corruption_never_escapes_as_an_untyped_error(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = parse_sp_metadata(peer.metadata())
    _, form = peer.post_authn_request(sign=True)
    original = base64.b64decode(form["SAMLRequest"])
    rng = random.Random(20261125)
    outcomes: set[str] = set()
    for _ in range(300):
        mutated = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            _parse(idp, _post(bytes(mutated)), sp)
            outcomes.add("accepted")
        except SamlError as exc:
            outcomes.add(type(exc).__name__)
    # Any untyped exception would have escaped the loop and failed the test; corruption of signed
    # content must be caught by the signature, and malformed XML by the parser.
    assert {"SignatureError", "MalformedMessageError"} <= outcomes


def test_cannot_respond_errors_share_one_base_for_the_error_page() -> None:
    for error in (
        UnsafeXmlError,
        SignatureError,
        UnknownEndpointError,
        ReplayedMessageError,
        StaleMessageError,
    ):
        assert issubclass(error, CannotRespondError)


def test_xml_id_attribute_shadowing_the_signed_id_is_refused(idp, sp_keys, signing_sp) -> None:
    signed = etree.fromstring(authn_request_xml(signing_sp.entity_id, request_id="_shadow", acs_url=APP_ACS))
    sign_enveloped(signed, SigningCredential(*sp_keys))
    decoy = etree.SubElement(etree.SubElement(signed, c.q(c.NS_SAMLP, "Extensions")), "{urn:example}decoy")
    decoy.set(c.q(c.NS_XML, "id"), "_shadow")

    with pytest.raises(SignatureError, match="more than once"):
        _parse(idp, _post(etree.tostring(signed)), signing_sp)


def test_processing_instruction_in_a_message_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        parse_xml(b"<a><?xml-stylesheet href='http://evil.example/x.xsl'?></a>")


def test_inflate_accepts_exactly_the_limit_and_refuses_one_byte_more() -> None:
    from idp.saml.xml import deflate_redirect, inflate_redirect

    assert inflate_redirect(deflate_redirect(b"a" * 1000), max_bytes=1000) == b"a" * 1000
    with pytest.raises(MessageTooLargeError):
        inflate_redirect(deflate_redirect(b"a" * 1001), max_bytes=1000)


def test_redirect_message_in_an_unknown_encoding_is_refused() -> None:
    with pytest.raises(MalformedMessageError):
        IncomingMessage.from_redirect("SAMLRequest=abc&SAMLEncoding=urn%3Aexample%3Agzip")
