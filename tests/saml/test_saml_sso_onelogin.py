"""Web SSO and SLO end to end against python3-saml in strict mode (signed messages and assertions wanted)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin_peer import OneLoginSP
from saml_testkit import MemoryReplayGuard, make_subject

from idp.saml import constants as c
from idp.saml.bindings import IncomingMessage, redirect_url
from idp.saml.errors import SamlRequestError, SignatureError
from idp.saml.response import build_response, build_status_response, passive_failure, status_response_for
from idp.saml.slo import (
    build_logout_request,
    build_logout_response,
    parse_logout_request,
    parse_logout_response,
)
from idp.saml.sp import ServiceProvider, parse_sp_metadata
from idp.saml.sso import idp_initiated_request, parse_authn_request

RELEASE = frozenset({"eduPersonPrincipalName", "mail", "displayName", "eduPersonScopedAffiliation"})


def _register(peer: OneLoginSP, **policy: object) -> ServiceProvider:
    return parse_sp_metadata(peer.metadata(), sign_response=True, release=RELEASE, **policy)


def _parse(idp, sp, message, guard=None):
    return parse_authn_request(
        message, idp=idp, sp_lookup={sp.entity_id: sp}.get, replay_guard=guard or MemoryReplayGuard()
    )


def _query_dict(raw_query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw_query).items()}


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_onelogin_sp_accepts_response_to_signed_redirect_request(idp, sp_keys, encrypted) -> None:
    peer = OneLoginSP.create(idp, sp_keys, want_encrypted=encrypted)
    sp = _register(peer)
    request_id, query = peer.redirect_authn_request()
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))
    assert request.signed and request.target.relay_state == "https://lms.uni.example/course/7"

    out = build_response(request, make_subject(), idp)

    assert (b"EncryptedAssertion" in out.xml) is encrypted
    accepted = peer.accept_response(out.encoded, request_id)
    assert accepted.get_attributes() == {
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": ["mario.rossi@uni.example"],
        "urn:oid:0.9.2342.19200300.100.1.3": ["mario.rossi@studenti.uni.example"],
        "urn:oid:2.16.840.1.113730.3.1.241": ["Mario Rossi"],
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.9": ["student@uni.example", "member@uni.example"],
    }
    assert accepted.get_nameid_format() == c.NAMEID_TRANSIENT


@pytest.mark.parametrize("sign", [True, False], ids=["signed", "unsigned"])
def test_onelogin_sp_accepts_response_to_post_binding_request(idp, sp_keys, sign) -> None:
    peer = OneLoginSP.create(idp, sp_keys, sign_requests=sign)
    sp = _register(peer)
    request_id, form = peer.post_authn_request(sign=sign)
    request = _parse(idp, sp, IncomingMessage.from_post(form))
    assert request.signed is sign

    out = build_response(request, make_subject(), idp)

    assert out.form_fields()["RelayState"] == "rs-post"
    peer.accept_response(out.encoded, request_id)


def test_onelogin_sp_gets_a_signed_no_passive_status_for_a_passive_request(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = _register(peer)
    request_id, query = peer.redirect_authn_request(is_passive=True)
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))
    assert request.is_passive

    out = passive_failure(request, idp)

    with pytest.raises(AssertionError, match="NoPassive"):
        peer.accept_response(out.encoded, request_id)
    assert OneLogin_Saml2_Utils.validate_sign(out.xml, cert=idp.signing.cert_pem.decode(), raise_exceptions=True)


def test_onelogin_sp_requesting_mfa_gets_no_authn_context_when_only_a_password_was_used(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys, requested_authn_context=[c.AC_REFEDS_MFA])
    sp = _register(peer)
    request_id, query = peer.redirect_authn_request()
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))
    assert request.requires_mfa

    with pytest.raises(SamlRequestError) as refused:
        build_response(request, make_subject(acr=c.AC_PASSWORD_PROTECTED), idp)
    assert refused.value.sub_status == c.STATUS_NO_AUTHN_CONTEXT
    out = status_response_for(refused.value, idp)

    assert f'Value="{c.STATUS_NO_AUTHN_CONTEXT}"'.encode() in out.xml
    with pytest.raises(AssertionError, match="was Responder -> authentication context not met"):
        peer.accept_response(out.encoded, request_id)


def test_onelogin_sp_requesting_mfa_accepts_an_mfa_assertion(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys, requested_authn_context=[c.AC_REFEDS_MFA])
    sp = _register(peer)
    request_id, query = peer.redirect_authn_request()
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))

    out = build_response(request, make_subject(acr=c.AC_REFEDS_MFA), idp)

    assert peer.accept_response(out.encoded, request_id).get_authn_contexts() == [c.AC_REFEDS_MFA]


def test_onelogin_sp_gets_responder_status_for_an_idp_side_failure(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = _register(peer)
    request_id, query = peer.redirect_authn_request()
    request = _parse(idp, sp, IncomingMessage.from_redirect(query))

    out = build_status_response(request.target, idp, c.STATUS_RESPONDER, c.STATUS_REQUEST_UNSUPPORTED)

    with pytest.raises(AssertionError, match="RequestUnsupported"):
        peer.accept_response(out.encoded, request_id)


def test_onelogin_sp_initiated_logout_gets_a_logout_response_it_accepts(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = _register(peer)
    request_id, query = peer.logout_request(name_id="_transient-1", session_index="_sess-1")

    logout = parse_logout_request(
        IncomingMessage.from_redirect(query),
        idp=idp,
        sp_lookup={sp.entity_id: sp}.get,
        replay_guard=MemoryReplayGuard(),
    )
    assert (logout.name_id, logout.session_indexes, logout.signed) == ("_transient-1", ("_sess-1",), True)
    out = build_logout_response(logout, idp)
    location = redirect_url(out, idp.signing)

    assert location.startswith("https://lms.uni.example/saml/sls?")
    raw_query = urlsplit(location).query
    peer.accept_logout_response(raw_query, _query_dict(raw_query), request_id)


def test_onelogin_sp_accepts_an_idp_initiated_logout_request(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = _register(peer)

    out = build_logout_request(sp, "_transient-2", c.NAMEID_TRANSIENT, "_sess-2", idp)
    raw_query = urlsplit(redirect_url(out, idp.signing)).query

    peer.accept_logout_request(raw_query, _query_dict(raw_query))


def test_unsigned_logout_request_is_refused(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = _register(peer)
    _, query = peer.logout_request(name_id="_transient-1", session_index="_sess-1")
    unsigned = "&".join(p for p in query.split("&") if not p.startswith(("Signature=", "SigAlg=")))

    with pytest.raises(SignatureError):
        parse_logout_request(
            IncomingMessage.from_redirect(unsigned),
            idp=idp,
            sp_lookup={sp.entity_id: sp}.get,
            replay_guard=MemoryReplayGuard(),
        )


def test_idp_initiated_logout_round_trip_reads_the_sps_signed_answer(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys)
    sp = _register(peer)
    out = build_logout_request(sp, "_transient-3", c.NAMEID_TRANSIENT, "_sess-3", idp)
    raw_query = urlsplit(redirect_url(out, idp.signing)).query

    answer = peer.answer_logout_request(raw_query, _query_dict(raw_query))
    result = parse_logout_response(
        IncomingMessage.from_redirect(urlsplit(answer).query),
        idp=idp,
        sp_lookup={sp.entity_id: sp}.get,
        expected_request_id=out.message_id,
    )

    assert result.success and result.in_response_to == out.message_id


def test_idp_initiated_sso_is_accepted_by_an_sp_that_allows_unsolicited_responses(idp, sp_keys) -> None:
    peer = OneLoginSP.create(idp, sp_keys, want_encrypted=True)
    sp = _register(peer)

    out = build_response(idp_initiated_request(sp, idp, relay_state="/home"), make_subject(), idp)

    assert b"InResponseTo" not in out.xml
    assert peer.accept_response(out.encoded, None).get_nameid()
