"""Web SSO and SLO end to end against pysaml2's Saml2Client as the SP."""

from __future__ import annotations

import pytest
from pysaml2_peer import Pysaml2SP
from saml2 import BINDING_HTTP_POST
from saml2.response import StatusNoPassive, StatusRequestDenied
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml_testkit import MemoryReplayGuard, make_subject

from idp.saml import constants as c
from idp.saml.attributes import pairwise_value
from idp.saml.bindings import IncomingMessage, redirect_url
from idp.saml.metadata import build_idp_metadata
from idp.saml.response import build_response, build_status_response, passive_failure
from idp.saml.slo import build_logout_response, parse_logout_request
from idp.saml.sp import parse_sp_metadata
from idp.saml.sso import parse_authn_request

RELEASE = frozenset({"eduPersonPrincipalName", "mail", "givenName", "sn", "schacPersonalUniqueID"})


@pytest.fixture(scope="module")
def idp_metadata(idp) -> bytes:
    return build_idp_metadata(idp)


def _peer(idp_metadata, sp_keys, tmp_path, **kwargs):
    peer = Pysaml2SP.create(idp_metadata, sp_keys, tmp_path, **kwargs)
    return peer, parse_sp_metadata(peer.metadata(), release=RELEASE)


def _parse(idp, sp, message):
    return parse_authn_request(message, idp=idp, sp_lookup={sp.entity_id: sp}.get, replay_guard=MemoryReplayGuard())


@pytest.mark.parametrize("encryption", [False, True], ids=["plain", "encrypted"])
def test_pysaml2_sp_accepts_response_to_signed_redirect_request(idp, idp_metadata, sp_keys, tmp_path, encryption):
    peer, sp = _peer(idp_metadata, sp_keys, tmp_path, encryption=encryption)
    assert bool(sp.encryption_certs) is encryption
    request_id, query = peer.redirect_authn_request(idp.entity_id)
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))
    assert request.signed

    out = build_response(request, make_subject(), idp)

    assert (b"EncryptedAssertion" in out.xml) is encryption
    accepted = peer.accept_response(out.encoded, request_id)
    assert accepted.ava == {
        "eduPersonPrincipalName": ["mario.rossi@uni.example"],
        "mail": ["mario.rossi@studenti.uni.example"],
        "givenName": ["Mario"],
        "sn": ["Rossi"],
        "schacPersonalUniqueID": ["urn:schac:personalUniqueID:it:CF:RSSMRA80A01H501U"],
    }
    assert accepted.assertion.authn_statement[0].authn_context.authn_context_class_ref.text == (c.AC_PASSWORD_PROTECTED)


@pytest.mark.parametrize("sign", [True, False], ids=["signed", "unsigned"])
def test_pysaml2_sp_accepts_response_to_post_binding_request(idp, idp_metadata, sp_keys, tmp_path, sign):
    peer, sp = _peer(idp_metadata, sp_keys, tmp_path, sign_requests=sign)
    request_id, form = peer.post_authn_request(idp.sso_post_url, sign=sign)
    request = _parse(idp, sp, IncomingMessage.from_post(form))
    assert request.signed is sign

    out = build_response(request, make_subject(), idp)

    assert peer.accept_response(out.encoded, request_id).ava["mail"] == ["mario.rossi@studenti.uni.example"]


def test_pysaml2_sp_receives_the_same_persistent_name_id_on_every_login(idp, idp_metadata, sp_keys, tmp_path):
    peer, sp = _peer(idp_metadata, sp_keys, tmp_path)
    seen = []
    for _ in range(2):
        request_id, query = peer.redirect_authn_request(idp.entity_id, nameid_format=NAMEID_FORMAT_PERSISTENT)
        request = _parse(idp, sp, IncomingMessage.from_redirect(query))
        out = build_response(request, make_subject(), idp)
        seen.append(peer.accept_response(out.encoded, request_id).name_id.text)

    assert seen[0] == seen[1] == pairwise_value(idp.name_id_salt, sp.entity_id, "acc-0042")


def test_pysaml2_sp_accepts_signed_no_passive_status(idp, idp_metadata, sp_keys, tmp_path) -> None:
    peer, sp = _peer(idp_metadata, sp_keys, tmp_path)
    request_id, query = peer.redirect_authn_request(idp.entity_id, is_passive="true")
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))

    with pytest.raises(StatusNoPassive):
        peer.accept_response(passive_failure(request, idp).encoded, request_id)


def test_pysaml2_sp_accepts_signed_request_denied_status(idp, idp_metadata, sp_keys, tmp_path) -> None:
    peer, sp = _peer(idp_metadata, sp_keys, tmp_path)
    request_id, query = peer.redirect_authn_request(idp.entity_id)
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))
    out = build_status_response(request.target, idp, c.STATUS_REQUESTER, c.STATUS_REQUEST_DENIED)

    with pytest.raises(StatusRequestDenied):
        peer.accept_response(out.encoded, request_id)


def test_pysaml2_sp_initiated_logout_gets_a_logout_response_it_accepts(idp, idp_metadata, sp_keys, tmp_path):
    peer, sp = _peer(idp_metadata, sp_keys, tmp_path)
    name_id = NameID(format=c.NAMEID_TRANSIENT, text="_t-9", sp_name_qualifier=sp.entity_id)
    _, query = peer.logout_request(idp.entity_id, name_id, "_sess-9")

    logout = parse_logout_request(
        IncomingMessage.from_redirect(query),
        idp=idp,
        sp_lookup={sp.entity_id: sp}.get,
        replay_guard=MemoryReplayGuard(),
    )
    out = build_logout_response(logout, idp)
    location = redirect_url(out, idp.signing)

    response = peer.accept_logout_response(location.split("?", 1)[1])
    assert response.response.status.status_code.value == c.STATUS_SUCCESS
    assert response.response.in_response_to == logout.id


def test_pysaml2_sp_with_a_post_slo_endpoint_accepts_a_signed_posted_logout_response(
    idp, idp_metadata, sp_keys, tmp_path
) -> None:
    peer, sp = _peer(idp_metadata, sp_keys, tmp_path, slo_binding=BINDING_HTTP_POST)
    name_id = NameID(format=c.NAMEID_TRANSIENT, text="_t-10", sp_name_qualifier=sp.entity_id)
    _, query = peer.logout_request(idp.entity_id, name_id, "_sess-10")
    logout = parse_logout_request(
        IncomingMessage.from_redirect(query),
        idp=idp,
        sp_lookup={sp.entity_id: sp}.get,
        replay_guard=MemoryReplayGuard(),
    )

    out = build_logout_response(logout, idp)

    assert out.binding == c.BINDING_HTTP_POST and b"<ds:Signature" in out.xml
    response = peer.accept_posted_logout_response(out.encoded)
    assert response.response.status.status_code.value == c.STATUS_SUCCESS
