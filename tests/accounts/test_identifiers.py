"""Checks on typed text before any lookup: control characters, undecodable input, length."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from idp.accounts.identifiers import (
    CONTROL_CHARACTERS,
    InvalidInput,
    check_identifier,
    check_name,
    check_text,
    iso_3166_countries,
    normalise_identifier,
)


def test_the_control_character_class_is_exactly_unicodes_cc_and_cs_categories():
    refused = {cp for cp in range(sys.maxunicode + 1) if CONTROL_CHARACTERS.search(chr(cp))}
    expected = {cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) in {"Cc", "Cs"}}
    assert refused == expected
    assert len(expected) == 65 + 2048  # C0, DEL and C1; the surrogates


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("   ", "required"),
        ("x" * 101, "too_long"),
        ("mario\ufffdrossi", "bad_encoding"),
        ("mario\x00rossi", "control_characters"),
        ("mario\x1brossi", "control_characters"),
        ("mario\x85rossi", "control_characters"),
        ("mario\ud800rossi", "control_characters"),
    ],
)
def test_malformed_text_is_refused_with_its_reason(value, code):
    with pytest.raises(InvalidInput) as refused:
        check_text("username", value, 100)
    assert (refused.value.field, refused.value.message) == ("username", code)


@pytest.mark.parametrize("value", ["mario.rossi", "Mario Rossi", "perché-àèìòù", "用户", "a\u200bb", "x" * 100])
def test_ordinary_text_passes_unchanged(value):
    assert check_text("username", value, 100) == value


def test_identifiers_are_normalised_by_nfkc_trim_and_case_folding():
    assert normalise_identifier(" Mario.Rossi@Uni.IT ") == "mario.rossi@uni.it"
    assert normalise_identifier("ＭＡＲＩＯ") == "mario"  # fullwidth letters (NFKC)
    assert normalise_identifier("STRASSE") == normalise_identifier("straße")


def test_the_country_codes_are_the_249_iso_3166_1_alpha_2_codes():
    countries = iso_3166_countries()
    assert len(countries) == 249
    assert {"IT", "FR", "SS", "CW", "PS", "AQ"} <= countries
    assert not {"ZZ", "XK", "EU", "UN", "UK", "AC", "QO", "XA"} & countries


@pytest.mark.parametrize("value", ["a\u200bb", "\ufeffmario", "mario\u202e", "ma\u2066rio", "\u061cmario"])
def test_identifiers_refuse_format_characters(value):
    with pytest.raises(InvalidInput) as refused:
        check_identifier("username", value, 100)
    assert refused.value.field == "username"
    assert "invisible" in refused.value.message


def test_a_name_is_trimmed_and_needs_a_visible_letter():
    assert check_name("given_name", "  Anna Maria ") == "Anna Maria"
    for blank in ("\u3164", "\u115f\u1160", "'-", "\u00a0"):
        with pytest.raises(InvalidInput):
            check_name("given_name", blank)
