"""Italian and English pages: ?lang=, a remembered choice, Accept-Language, Italian by default."""

from __future__ import annotations


def test_italian_is_the_default(browser):
    page = browser.open_login()
    assert '<html lang="it">' in page.text
    assert "Accedi" in page.text
    assert "Resta connesso" in page.text


def test_accept_language_english_gives_english(app):
    client = app.test_client()
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<html lang="en">' in text
    assert "Stay connected" in text
    assert '<label for="password">Password</label>' in text


def test_lang_parameter_wins_and_is_remembered(browser):
    page = browser.follow(browser.get("/login?lang=en"))
    assert "Sign in" in page.text
    assert browser.client.get_cookie("varco_lang").value == "en"
    again = browser.open_login()
    assert '<html lang="en">' in again.text


def test_language_switch_link_keeps_the_flow(browser):
    page = browser.open_login()
    assert 'lang="en"' in page.text
    assert "flow=" in page.text.split('hreflang="en"')[0].rsplit("<a", 1)[1]


def test_unknown_language_falls_back_to_italian(browser):
    page = browser.follow(browser.get("/login?lang=xx"))
    assert '<html lang="it">' in page.text


def test_every_italian_message_is_translated():
    from pathlib import Path

    from babel.messages.pofile import read_po

    po = Path(__file__).parents[2] / "idp" / "translations" / "it" / "LC_MESSAGES" / "messages.po"
    catalog = read_po(po.open("rb"))
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []


def test_compiled_catalogue_matches_the_source(tmp_path):
    from pathlib import Path

    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    base = Path(__file__).parents[2] / "idp" / "translations" / "it" / "LC_MESSAGES"
    source = {m.id: m.string for m in read_po((base / "messages.po").open("rb")) if m.id}
    compiled = {m.id: m.string for m in read_mo((base / "messages.mo").open("rb")) if m.id}
    assert compiled == source
