"""Attribute release: only what the SP's policy and entity categories allow, named by URI."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from saml_testkit import make_subject, sp_metadata_xml

from idp.saml import constants as c
from idp.saml.attributes import ATTRIBUTES, fiscal_code_unique_id, release, released_attribute_names
from idp.saml.sp import RequestedAttribute, parse_sp_metadata

SCOPE = "uni.example"
SALT = b"salt"


@pytest.fixture(scope="module")
def bare_sp(sp_keys):
    return parse_sp_metadata(sp_metadata_xml("https://bare.example/sp", sp_keys[1]))


def _release(sp):
    return release(sp, make_subject().attributes, account_id="acc-0042", scope=SCOPE, salt=SALT)


def test_sp_without_policy_or_categories_receives_nothing(bare_sp) -> None:
    assert _release(bare_sp) == {}


def test_sp_receives_exactly_the_attributes_its_policy_lists(bare_sp) -> None:
    sp = replace(bare_sp, release=frozenset({"mail", "eduPersonAffiliation"}))
    assert _release(sp) == {
        ATTRIBUTES["mail"]: ["mario.rossi@studenti.uni.example"],
        ATTRIBUTES["eduPersonAffiliation"]: ["student", "member"],
    }


def test_fiscal_code_is_released_as_a_schac_personal_unique_id_only_when_listed(bare_sp) -> None:
    assert fiscal_code_unique_id("rssmra80a01h501u") == "urn:schac:personalUniqueID:it:CF:RSSMRA80A01H501U"
    sp = replace(bare_sp, release=frozenset({"schacPersonalUniqueID"}))
    assert _release(sp) == {"urn:oid:1.3.6.1.4.1.25178.1.2.15": ["urn:schac:personalUniqueID:it:CF:RSSMRA80A01H501U"]}


def test_research_and_scholarship_sp_gets_the_bundle_and_no_fiscal_code(bare_sp) -> None:
    sp = replace(bare_sp, entity_categories=frozenset({c.EC_RESEARCH_AND_SCHOLARSHIP}))
    assert released_attribute_names(sp) == {
        "eduPersonPrincipalName",
        "mail",
        "displayName",
        "givenName",
        "sn",
        "eduPersonScopedAffiliation",
        "pairwise-id",
    }
    assert ATTRIBUTES["schacPersonalUniqueID"] not in _release(sp)


def test_code_of_conduct_sp_gets_what_it_requests_but_not_national_identifiers(bare_sp) -> None:
    sp = replace(
        bare_sp,
        entity_categories=frozenset({c.EC_COCO_V1}),
        requested_attributes=(
            RequestedAttribute(ATTRIBUTES["givenName"], "givenName", True),
            RequestedAttribute(ATTRIBUTES["schacPersonalUniqueID"], "schacPersonalUniqueID", True),
            RequestedAttribute("urn:oid:9.9.9", "unknown", False),
        ),
    )
    assert released_attribute_names(sp) == {"givenName"}


def test_requested_attributes_alone_grant_nothing_without_a_category(bare_sp) -> None:
    sp = replace(bare_sp, requested_attributes=(RequestedAttribute(ATTRIBUTES["mail"], "mail", True),))
    assert _release(sp) == {}


def test_pairwise_id_is_scoped_and_follows_the_profile_grammar(bare_sp) -> None:
    sp = replace(bare_sp, subject_id_req="pairwise-id")
    (value,) = _release(sp)[ATTRIBUTES["pairwise-id"]]
    unique, scope = value.split("@")
    # SAML V2.0 Subject Identifier Attributes Profile 3.3.1
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9=-]{0,126}", unique) and scope == SCOPE
    other = replace(sp, entity_id="https://other.example/sp")
    assert _release(other)[ATTRIBUTES["pairwise-id"]] != [value]


def test_subject_id_is_released_when_the_sp_requires_it(bare_sp) -> None:
    sp = replace(bare_sp, subject_id_req="subject-id")
    assert _release(sp) == {ATTRIBUTES["subject-id"]: ["acc-0042@uni.example"]}


def test_empty_values_are_not_released(bare_sp) -> None:
    sp = replace(bare_sp, release=frozenset({"mail"}))
    assert release(sp, {"mail": [""]}, account_id="a", scope=SCOPE, salt=SALT) == {}
