"""How a valid AuthnRequest's options are resolved: ACS, NameIDPolicy, RequestedAuthnContext, ForceAuthn."""

from __future__ import annotations

import base64
import time
from dataclasses import replace

import pytest
from lxml import etree
from saml_testkit import MemoryReplayGuard, authn_request_xml, make_subject, sp_metadata_xml

from idp.saml import constants as c
from idp.saml.attributes import pairwise_value
from idp.saml.bindings import IncomingMessage
from idp.saml.errors import MalformedMessageError, SamlRequestError, UnknownEndpointError
from idp.saml.response import build_response
from idp.saml.sp import parse_sp_metadata
from idp.saml.sso import parse_authn_request

SP = "https://app.uni.example/sp"
ACS0 = "https://app.uni.example/saml/acs"
ACS1 = "https://app.uni.example/saml/acs-second"


@pytest.fixture(scope="module")
def sp(sp_keys):
    return parse_sp_metadata(sp_metadata_xml(SP, sp_keys[1], acs=((0, ACS0), (1, ACS1))))


def _parse(idp, sp, xml: bytes):
    message = IncomingMessage.from_post({"SAMLRequest": base64.b64encode(xml).decode(), "RelayState": "r"})
    return parse_authn_request(message, idp=idp, sp_lookup={sp.entity_id: sp}.get, replay_guard=MemoryReplayGuard())


def _name_id_policy(fmt: str, qualifier: str | None = None) -> str:
    q = f' SPNameQualifier="{qualifier}"' if qualifier else ""
    return f'<samlp:NameIDPolicy Format="{fmt}"{q} AllowCreate="true"/>'


def _authn_context(comparison: str, *classes: str) -> str:
    refs = "".join(f"<saml:AuthnContextClassRef>{x}</saml:AuthnContextClassRef>" for x in classes)
    return f'<samlp:RequestedAuthnContext Comparison="{comparison}">{refs}</samlp:RequestedAuthnContext>'


def _assertion(out) -> etree._Element:
    return etree.fromstring(out.xml).find(c.q(c.NS_SAML, "Assertion"))


def test_request_without_acs_goes_to_the_first_post_acs_in_metadata(idp, sp) -> None:
    assert _parse(idp, sp, authn_request_xml(SP)).target.acs_url == ACS0


def test_request_naming_an_acs_index_goes_to_that_endpoint(idp, sp) -> None:
    assert _parse(idp, sp, authn_request_xml(SP, acs_index=1)).target.acs_url == ACS1


def test_request_with_both_acs_url_and_index_is_refused(idp, sp) -> None:
    with pytest.raises(MalformedMessageError):
        _parse(idp, sp, authn_request_xml(SP, acs_url=ACS0, acs_index=0))


def test_request_asking_for_artifact_binding_is_refused(idp, sp) -> None:
    artifact = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
    with pytest.raises(UnknownEndpointError):
        _parse(idp, sp, authn_request_xml(SP, protocol_binding=artifact))


def test_saml_1_request_gets_version_mismatch(idp, sp) -> None:
    xml = authn_request_xml(SP).replace(b'Version="2.0"', b'Version="1.1"')
    with pytest.raises(SamlRequestError) as refused:
        _parse(idp, sp, xml)
    assert refused.value.status == c.STATUS_VERSION_MISMATCH
    assert refused.value.target.acs_url == ACS0


def test_unsupported_name_id_format_gets_invalid_name_id_policy(idp, sp) -> None:
    fmt = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
    with pytest.raises(SamlRequestError) as refused:
        _parse(idp, sp, authn_request_xml(SP, inner=_name_id_policy(fmt)))
    assert (refused.value.status, refused.value.sub_status) == (
        c.STATUS_REQUESTER,
        c.STATUS_INVALID_NAMEID_POLICY,
    )


def test_name_id_for_an_affiliation_is_refused(idp, sp) -> None:
    policy = _name_id_policy(c.NAMEID_PERSISTENT, "https://affiliation.example")
    with pytest.raises(SamlRequestError) as refused:
        _parse(idp, sp, authn_request_xml(SP, inner=policy))
    assert refused.value.sub_status == c.STATUS_INVALID_NAMEID_POLICY


def test_persistent_name_id_is_pairwise_per_sp_and_stable(idp, sp, sp_keys) -> None:
    other = parse_sp_metadata(sp_metadata_xml("https://other.uni.example/sp", sp_keys[1]))
    values = []
    for target in (sp, sp, other):
        request = _parse(idp, target, authn_request_xml(target.entity_id, inner=_name_id_policy(c.NAMEID_PERSISTENT)))
        name_id = _assertion(build_response(request, make_subject(), idp)).find(f".//{{{c.NS_SAML}}}NameID")
        assert name_id.get("Format") == c.NAMEID_PERSISTENT and name_id.get("SPNameQualifier") == target.entity_id
        values.append(name_id.text)
    assert values[0] == values[1] == pairwise_value(idp.name_id_salt, SP, "acc-0042")
    assert values[2] != values[0]


def test_transient_name_id_changes_on_every_response(idp, sp) -> None:
    values = set()
    for n in range(2):
        request = _parse(idp, sp, authn_request_xml(SP, request_id=f"_t{n}", inner=_name_id_policy(c.NAMEID_TRANSIENT)))
        values.add(_assertion(build_response(request, make_subject(), idp)).findtext(f".//{{{c.NS_SAML}}}NameID"))
    assert len(values) == 2


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [(c.NAMEID_EMAIL, "mario.rossi@studenti.uni.example"), (c.NAMEID_UNSPECIFIED, None)],
)
def test_email_and_unspecified_name_id_formats(idp, sp, fmt, expected) -> None:
    request = _parse(idp, sp, authn_request_xml(SP, inner=_name_id_policy(fmt)))
    name_id = _assertion(build_response(request, make_subject(), idp)).find(f".//{{{c.NS_SAML}}}NameID")
    if expected:
        assert (name_id.get("Format"), name_id.text) == (fmt, expected)
    else:  # unspecified lets Varco choose: the SP's metadata says nothing, so transient
        assert name_id.get("Format") == c.NAMEID_TRANSIENT


@pytest.mark.parametrize(
    ("comparison", "classes", "acceptable"),
    [
        ("exact", [c.AC_PASSWORD_PROTECTED], (c.AC_PASSWORD_PROTECTED,)),
        ("exact", [c.AC_REFEDS_MFA], (c.AC_REFEDS_MFA,)),
        ("minimum", [c.AC_PASSWORD_PROTECTED], (c.AC_PASSWORD_PROTECTED, c.AC_REFEDS_MFA)),
        ("minimum", [c.AC_REFEDS_MFA], (c.AC_REFEDS_MFA,)),
        ("better", [c.AC_PASSWORD_PROTECTED], (c.AC_REFEDS_MFA,)),
        ("maximum", [c.AC_PASSWORD_PROTECTED], (c.AC_PASSWORD_PROTECTED,)),
    ],
)
def test_requested_authn_context_comparisons(idp, sp, comparison, classes, acceptable) -> None:
    request = _parse(idp, sp, authn_request_xml(SP, inner=_authn_context(comparison, *classes)))
    assert request.acceptable_authn_contexts == acceptable
    assert request.requires_mfa is (acceptable == (c.AC_REFEDS_MFA,))


def test_unknown_authn_context_class_gets_no_authn_context(idp, sp) -> None:
    xml = authn_request_xml(SP, inner=_authn_context("exact", "urn:example:ac:retina-scan"))
    with pytest.raises(SamlRequestError) as refused:
        _parse(idp, sp, xml)
    assert (refused.value.status, refused.value.sub_status) == (c.STATUS_RESPONDER, c.STATUS_NO_AUTHN_CONTEXT)


def test_mfa_assertion_carries_the_refeds_mfa_class(idp, sp) -> None:
    request = _parse(idp, sp, authn_request_xml(SP, inner=_authn_context("exact", c.AC_REFEDS_MFA)))
    out = build_response(request, make_subject(acr=c.AC_REFEDS_MFA), idp)
    assert _assertion(out).findtext(f".//{{{c.NS_SAML}}}AuthnContextClassRef") == c.AC_REFEDS_MFA


def test_force_authn_refuses_an_authentication_older_than_the_request(idp, sp) -> None:
    request = _parse(idp, sp, authn_request_xml(SP, attrs='ForceAuthn="true"'))
    assert request.force_authn
    with pytest.raises(SamlRequestError) as refused:
        build_response(request, make_subject(auth_time=int(time.time()) - 3600), idp)
    assert refused.value.sub_status == c.STATUS_AUTHN_FAILED
    assert build_response(request, make_subject(auth_time=int(time.time())), idp).encoded


def test_request_naming_a_subject_is_declined_as_unsupported(idp, sp) -> None:
    inner = "<saml:Subject><saml:NameID>someone</saml:NameID></saml:Subject>"
    with pytest.raises(SamlRequestError) as refused:
        _parse(idp, sp, authn_request_xml(SP, inner=inner))
    assert refused.value.sub_status == c.STATUS_REQUEST_UNSUPPORTED


def test_assertion_is_bound_to_request_audience_and_acs(idp, sp) -> None:
    request = _parse(idp, sp, authn_request_xml(SP, request_id="_bound", acs_index=1))
    assertion = _assertion(build_response(request, make_subject(), idp))
    data = assertion.find(f".//{{{c.NS_SAML}}}SubjectConfirmationData")
    assert (data.get("InResponseTo"), data.get("Recipient")) == ("_bound", ACS1)
    assert assertion.findtext(f".//{{{c.NS_SAML}}}Audience") == SP
    assert assertion.find(c.q(c.NS_DS, "Signature")) is not None


def test_sp_registered_as_requiring_mfa_gets_mfa_even_without_asking(idp, sp) -> None:
    strict = replace(sp, require_mfa=True)
    request = _parse(idp, strict, authn_request_xml(SP))
    assert request.requires_mfa and request.acceptable_authn_contexts == (c.AC_REFEDS_MFA,)
    with pytest.raises(SamlRequestError) as refused:
        build_response(request, make_subject(acr=c.AC_PASSWORD_PROTECTED), idp)
    assert refused.value.sub_status == c.STATUS_NO_AUTHN_CONTEXT


def test_sp_requiring_mfa_that_asks_for_password_only_gets_no_authn_context(idp, sp) -> None:
    strict = replace(sp, require_mfa=True)
    with pytest.raises(SamlRequestError) as refused:
        _parse(idp, strict, authn_request_xml(SP, inner=_authn_context("exact", c.AC_PASSWORD_PROTECTED)))
    assert refused.value.sub_status == c.STATUS_NO_AUTHN_CONTEXT


def test_replay_cache_outage_propagates_instead_of_letting_the_request_through(idp, sp) -> None:
    def broken_guard(key: str, ttl: int) -> bool:
        raise ConnectionError("ephemeral store down")

    message = IncomingMessage.from_post({"SAMLRequest": base64.b64encode(authn_request_xml(SP)).decode()})
    with pytest.raises(ConnectionError):
        parse_authn_request(message, idp=idp, sp_lookup={SP: sp}.get, replay_guard=broken_guard)
