"""Web Browser SSO through Varco's HTTP endpoints, with python3-saml (strict) and pysaml2 as the SPs,
a real account and the real login flow, on both store pairs."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import quote

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin_peer import OneLoginSP
from pysaml2_peer import Pysaml2SP
from saml2.response import StatusNoPassive
from saml_testkit import authn_request_xml, sp_metadata_xml
from saml_web import PASSWORD, local, login_through, posted_form, register

from idp.saml import constants as c
from idp.saml.attributes import ATTRIBUTES
from tests.support.mfa import code, enrolled, set_login_count

ONELOGIN_ACS = "https://lms.uni.example/saml/acs"
PYSAML2_ACS = "https://wiki.uni.example/saml/acs"


@pytest.fixture
def web_idp(app):
    return app.extensions["varco_saml"].idp


@pytest.fixture
def mario(make_account):
    return make_account(fiscal_code="RSSMRA85T10H501O", citizenship="IT")


def onelogin_sp(app, web_idp, sp_keys, **options):
    peer = OneLoginSP.create(
        web_idp,
        sp_keys,
        want_encrypted=options.pop("want_encrypted", False),
        requested_authn_context=options.pop("requested_authn_context", False),
    )
    register(app, peer.metadata(), sign_response=True, **options)
    return peer


def pysaml2_sp(app, browser, sp_keys, tmp_path, **options):
    idp_metadata = browser.client.get("/saml/metadata").get_data()
    peer = Pysaml2SP.create(idp_metadata, sp_keys, tmp_path, encryption=options.pop("encryption", False))
    register(app, peer.metadata(), **options)
    return peer


@pytest.mark.parametrize("encrypted", [False, True], ids=["signed", "signed-and-encrypted"])
def test_onelogin_sp_gets_an_assertion_after_a_real_login_through_the_redirect_endpoint(
    app, browser, web_idp, sp_keys, mario, encrypted
):
    peer = onelogin_sp(app, web_idp, sp_keys, want_encrypted=encrypted)
    request_id, query = peer.redirect_authn_request()

    page = login_through(browser, browser.get(f"/saml/sso/redirect?{query}"))

    posted = posted_form(page)
    assert posted.action == ONELOGIN_ACS
    assert posted.fields["RelayState"] == "https://lms.uni.example/course/7"
    accepted = peer.accept_response(posted.saml_response, request_id)
    assert (b"EncryptedAssertion" in OneLogin_Saml2_Utils.b64decode(posted.saml_response)) is encrypted
    attributes = accepted.get_attributes()
    assert attributes[ATTRIBUTES["eduPersonPrincipalName"]] == ["mario.rossi@uni.example.it"]
    assert attributes[ATTRIBUTES["eduPersonAffiliation"]] == ["student", "member"]
    assert attributes[ATTRIBUTES["mail"]] == ["mario.rossi@studenti.uni.example.it"]
    assert attributes[ATTRIBUTES["schacPersonalUniqueID"]] == ["urn:schac:personalUniqueID:it:CF:RSSMRA85T10H501O"]
    assert accepted.get_authn_contexts() == [c.AC_PASSWORD_PROTECTED]
    assert (
        accepted.get_session_index()
        and accepted.get_session_index() not in browser.client.get_cookie("varco_sso").value
    )


@pytest.mark.parametrize("encryption", [False, True], ids=["signed", "signed-and-encrypted"])
def test_pysaml2_sp_gets_an_assertion_after_a_real_login_through_the_post_endpoint(
    app, browser, sp_keys, tmp_path, mario, encryption
):
    peer = pysaml2_sp(app, browser, sp_keys, tmp_path, encryption=encryption)
    idp_post_url = app.extensions["varco_saml"].idp.sso_post_url
    request_id, form = peer.post_authn_request(idp_post_url, sign=True)

    hop = browser.post("/saml/sso/post", form)
    assert hop.status == 303 and hop.location.startswith("/saml/sso/continue?req=")
    page = login_through(browser, browser.get(hop.location))

    posted = posted_form(page)
    assert posted.action == PYSAML2_ACS and posted.fields["RelayState"] == "wiki-post"
    assert (b"EncryptedAssertion" in base64.b64decode(posted.saml_response)) is encryption
    accepted = peer.accept_response(posted.saml_response, request_id)
    assert accepted.ava["mail"] == ["mario.rossi@studenti.uni.example.it"]
    assert accepted.ava["displayName"] == ["Mario Rossi"]


def test_second_sp_gets_single_sign_on_without_a_new_login(app, browser, web_idp, sp_keys, tmp_path, mario):
    first = onelogin_sp(app, web_idp, sp_keys)
    second = pysaml2_sp(app, browser, sp_keys, tmp_path)
    request_id, query = first.redirect_authn_request()
    page = login_through(browser, browser.get(f"/saml/sso/redirect?{query}"))
    first.accept_response(posted_form(page).saml_response, request_id)

    request_id, query = second.redirect_authn_request(web_idp.entity_id)
    page = browser.get(f"/saml/sso/redirect?{query}")

    accepted = second.accept_response(posted_form(page).saml_response, request_id)
    assert accepted.ava["eduPersonPrincipalName"] == ["mario.rossi@uni.example.it"]
    sessions = app.extensions["varco"].sessions
    participants = sessions.participants(browser.client.get_cookie("varco_sso").value)
    assert {p["relying_party"] for p in participants} == {
        "https://lms.uni.example/saml/metadata",
        "https://wiki.uni.example/shibboleth",
    }


def test_passive_request_without_a_session_gets_no_passive(app, browser, sp_keys, tmp_path):
    peer = pysaml2_sp(app, browser, sp_keys, tmp_path)
    request_id, query = peer.redirect_authn_request(app.extensions["varco_saml"].idp.entity_id, is_passive="true")

    page = browser.get(f"/saml/sso/redirect?{query}")

    with pytest.raises(StatusNoPassive):
        peer.accept_response(posted_form(page).saml_response, request_id)


def test_passive_request_with_a_session_is_answered_at_once(app, browser, web_idp, sp_keys, mario):
    peer = onelogin_sp(app, web_idp, sp_keys)
    browser.login("mario.rossi", PASSWORD)
    request_id, query = peer.redirect_authn_request(is_passive=True)

    page = browser.get(f"/saml/sso/redirect?{query}")

    assert peer.accept_response(posted_form(page).saml_response, request_id).get_nameid()


def test_force_authn_asks_for_the_password_again(app, browser, web_idp, sp_keys, mario):
    peer = onelogin_sp(app, web_idp, sp_keys)
    browser.login("mario.rossi", PASSWORD)
    request_id, query = peer.redirect_authn_request(force_authn=True)

    page = login_through(browser, browser.get(f"/saml/sso/redirect?{query}"))

    assert peer.accept_response(posted_form(page).saml_response, request_id).get_nameid()


def test_idp_initiated_sso_reaches_the_sp_with_its_relay_state(app, browser, web_idp, sp_keys, mario):
    peer = onelogin_sp(app, web_idp, sp_keys)

    first = browser.get("/saml/init?sp=https://lms.uni.example/saml/metadata&RelayState=/home")
    page = login_through(browser, first)

    posted = posted_form(page)
    assert posted.fields["RelayState"] == "/home"
    assert peer.accept_response(posted.saml_response, None).get_nameid()


def test_the_post_page_submits_itself_with_a_static_script_and_allows_only_that_acs(
    app, browser, web_idp, sp_keys, mario
):
    peer = onelogin_sp(app, web_idp, sp_keys)
    browser.login("mario.rossi", PASSWORD)
    _, query = peer.redirect_authn_request()

    response = browser.client.get(f"/saml/sso/redirect?{query}")

    body = response.get_data(as_text=True)
    assert '<script src="/static/saml-continue.js"></script>' in body
    assert "<script>" not in body and "onload" not in body
    assert '<button type="submit" class="button primary">' in body
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and f"form-action {ONELOGIN_ACS}" in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert browser.client.get("/static/saml-continue.js").status_code == 200


@pytest.mark.mfa_policy
@pytest.mark.parametrize(
    "trigger",
    [{"require_mfa": True}, {"requested_authn_context": [c.AC_REFEDS_MFA]}],
    ids=["sp-policy", "requested-authn-context"],
)
def test_sp_that_needs_mfa_gets_a_refeds_mfa_assertion_after_step_up(
    app, browser, web_idp, sp_keys, make_account, trigger
):
    account, secret = enrolled(app, make_account)
    set_login_count(app, account.id, 0)  # the account's own rule does not demand 2FA: only the SP does
    assert browser.login("mario.rossi", PASSWORD).location == "/account"
    peer = onelogin_sp(app, web_idp, sp_keys, **trigger)
    request_id, query = peer.redirect_authn_request()

    step_up = browser.follow(browser.get(f"/saml/sso/redirect?{query}"))
    assert 'name="otp"' in step_up.text and 'name="password"' not in step_up.text
    page = browser.follow(browser.submit(step_up, otp=code(secret, 1)))

    accepted = peer.accept_response(posted_form(page).saml_response, request_id)
    assert accepted.get_authn_contexts() == [c.AC_REFEDS_MFA]


def test_metadata_is_signed_and_served_from_one_build(app, browser, web_idp):
    first = browser.client.get("/saml/metadata")
    second = browser.client.get("/saml/metadata")

    assert first.status_code == 200 and first.mimetype == "application/samlmetadata+xml"
    assert first.get_data() == second.get_data()
    root = etree.fromstring(first.get_data())
    assert root.get("entityID") == web_idp.entity_id == "http://127.0.0.1:8080/saml/metadata"
    assert OneLogin_Saml2_Utils.validate_metadata_sign(
        first.get_data(), cert=web_idp.signing.cert_pem.decode(), raise_exceptions=True
    )
    locations = root.xpath("//md:SingleSignOnService/@Location", namespaces={"md": c.NS_MD})
    assert sorted(local(u) for u in locations) == ["/saml/sso/post", "/saml/sso/redirect"]


def test_login_page_names_the_service_from_its_metadata(app, browser, sp_keys):
    ui = (
        '<md:Extensions><mdui:UIInfo xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui">'
        '<mdui:DisplayName xml:lang="it">Moodle di Ateneo</mdui:DisplayName></mdui:UIInfo></md:Extensions>'
    )
    register(app, sp_metadata_xml("https://moodle.uni.example/sp", sp_keys[1], sp_extra=ui))
    idp = app.extensions["varco_saml"].idp
    xml = authn_request_xml("https://moodle.uni.example/sp", destination=idp.sso_redirect_url)
    encoded = base64.b64encode(zlib.compress(xml)[2:-4]).decode()

    page = browser.follow(browser.get(f"/saml/sso/redirect?SAMLRequest={quote(encoded, safe='')}"))

    assert 'name="password"' in page.text and "Moodle di Ateneo" in page.text


@pytest.mark.mfa_policy
def test_a_login_abandoned_at_the_second_factor_yields_no_assertion(app, browser, web_idp, sp_keys, make_account):
    enrolled(app, make_account)  # from now on the account's own rule demands 2FA
    peer = onelogin_sp(app, web_idp, sp_keys, require_mfa=True)
    _, query = peer.redirect_authn_request()
    login_page = browser.follow(browser.get(f"/saml/sso/redirect?{query}"))
    otp_page = browser.follow(browser.submit(login_page, username="mario.rossi", password=PASSWORD))
    assert 'name="otp"' in otp_page.text
    flow_id = otp_page.action.split("flow=", 1)[1]
    resumed = browser.get(f"/saml/sso/resume?flow={flow_id}")
    assert "SAMLResponse" not in resumed.text
    assert resumed.status < 500
    assert browser.client.get_cookie("varco_sso") is None
