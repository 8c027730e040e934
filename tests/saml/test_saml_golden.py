"""Golden XML under tests/data/saml: good and tampered messages side by side, stable canonical form."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from saml_testkit import MemoryReplayGuard

from idp.saml import constants as c
from idp.saml.attributes import released_attribute_names
from idp.saml.bindings import IncomingMessage
from idp.saml.errors import SignatureError
from idp.saml.sp import parse_sp_metadata
from idp.saml.sso import parse_authn_request
from idp.saml.xml import canonical, parse_xml

DATA = Path(__file__).parent.parent / "data" / "saml"
GOLDEN_NOW = 1768471260  # 2026-01-15T10:01:00Z, one minute after the golden IssueInstant


@pytest.fixture(scope="module")
def golden_sp():
    return parse_sp_metadata((DATA / "sp-metadata.xml").read_bytes())


def _parse(idp, golden_sp, name: str):
    form = {"SAMLRequest": base64.b64encode((DATA / name).read_bytes()).decode()}
    return parse_authn_request(
        IncomingMessage.from_post(form),
        idp=idp,
        sp_lookup={golden_sp.entity_id: golden_sp}.get,
        replay_guard=MemoryReplayGuard(),
        now=GOLDEN_NOW,
    )


def test_golden_sp_metadata_parses_to_the_expected_service_provider(golden_sp) -> None:
    assert golden_sp.entity_id == "https://golden.uni.example/sp"
    assert golden_sp.authn_requests_signed
    assert [(e.index, e.location) for e in golden_sp.acs] == [
        (0, "https://golden.uni.example/saml/acs"),
        (1, "https://golden.uni.example/saml/acs2"),
    ]
    assert golden_sp.entity_categories == {c.EC_RESEARCH_AND_SCHOLARSHIP, c.EC_COCO_V2}
    assert [a.friendly_name for a in golden_sp.requested_attributes] == [
        "mail",
        "eduPersonEntitlement",
        "schacPersonalUniqueID",
    ]
    assert len(golden_sp.signing_certs) == 1


def test_golden_signed_authn_request_is_accepted(idp, golden_sp) -> None:
    request = _parse(idp, golden_sp, "authn-request-signed.xml")
    assert (request.id, request.signed, request.target.acs_url) == (
        "_golden-0001",
        True,
        "https://golden.uni.example/saml/acs",
    )


def test_golden_request_with_one_byte_changed_fails_its_signature(idp, golden_sp) -> None:
    good = (DATA / "authn-request-signed.xml").read_bytes()
    bad = (DATA / "authn-request-tampered.xml").read_bytes()
    assert len(good) == len(bad) and sum(a != b for a, b in zip(good, bad, strict=True)) == 1

    with pytest.raises(SignatureError, match="verification failed"):
        _parse(idp, golden_sp, "authn-request-tampered.xml")


def test_golden_wrapped_request_is_refused(idp, golden_sp) -> None:
    with pytest.raises(SignatureError):
        _parse(idp, golden_sp, "authn-request-wrapped.xml")


def test_exclusive_canonical_form_of_the_golden_request_is_stable() -> None:
    root = parse_xml((DATA / "authn-request-signed.xml").read_bytes())
    assert canonical(root) == (DATA / "authn-request-signed.c14n.xml").read_bytes()


def test_entity_categories_of_golden_sp_decide_what_it_may_receive(golden_sp) -> None:
    # R&S bundle + pairwise-id, plus CoCo-requested eduPersonEntitlement; the fiscal code stays out.
    assert released_attribute_names(golden_sp) == {
        "eduPersonPrincipalName",
        "mail",
        "displayName",
        "givenName",
        "sn",
        "eduPersonScopedAffiliation",
        "pairwise-id",
        "eduPersonEntitlement",
    }
