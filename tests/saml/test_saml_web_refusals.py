"""Hostile or broken requests at the HTTP endpoints: a clear page (400) or a signed status response
to the SP's registered ACS, never a 500, on both store pairs."""

from __future__ import annotations

import base64
import datetime
import zlib
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from lxml import etree
from saml_testkit import authn_request_xml, sp_metadata_xml
from saml_web import login_through, posted_form, register

from idp.saml import constants as c
from idp.saml.credentials import Certificate, SigningCredential
from idp.saml.signing import sign_redirect_query, verify_enveloped
from idp.saml.xml import deflate_redirect
from idp.store.ephemeral import EphemeralUnavailable

SP = "https://app.uni.example/sp"
ACS = "https://app.uni.example/saml/acs"
NOT_REGISTERED = "The service that sent you here is not registered"
NOT_VALID = "The request from the service is not valid"


@pytest.fixture(autouse=True)
def english(browser):
    """The pages are read in English here, whatever the default language."""
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def web_idp(app):
    return app.extensions["varco_saml"].idp


@pytest.fixture
def sp(app, sp_keys):
    register(app, sp_metadata_xml(SP, sp_keys[1]))
    return SP


def redirect_query(xml: bytes, relay_state: str | None = None) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()
    query = "SAMLRequest=" + quote(encoded, safe="")
    return query + (f"&RelayState={quote(relay_state, safe='')}" if relay_state else "")


def request_for(web_idp, issuer: str = SP, **kwargs) -> bytes:
    kwargs.setdefault("destination", web_idp.sso_redirect_url)
    return authn_request_xml(issuer, **kwargs)


def refused(page, text: str = NOT_VALID) -> None:
    assert page.status == 400, (page.status, page.text[:300])
    assert text in page.text


def test_request_from_an_unknown_sp_gets_a_clear_page(browser, web_idp, sp):
    page = browser.get("/saml/sso/redirect?" + redirect_query(request_for(web_idp, "https://evil.example/sp")))
    refused(page, NOT_REGISTERED)


def test_request_naming_an_unregistered_acs_gets_a_clear_page_and_nothing_is_posted_there(browser, web_idp, sp):
    xml = request_for(web_idp, acs_url="https://evil.example/collect")
    page = browser.get("/saml/sso/redirect?" + redirect_query(xml))
    refused(page)
    assert "evil.example" not in page.text


def test_unsigned_request_from_an_sp_that_must_sign_is_refused(app, browser, web_idp, sp_keys):
    register(app, sp_metadata_xml(SP, sp_keys[1], authn_requests_signed=True))
    refused(browser.get("/saml/sso/redirect?" + redirect_query(request_for(web_idp))))
    form = {"SAMLRequest": base64.b64encode(request_for(web_idp, destination=web_idp.sso_post_url)).decode()}
    refused(browser.post("/saml/sso/post", form))


def test_replayed_request_id_is_refused(browser, web_idp, sp):
    query = redirect_query(request_for(web_idp, request_id="_once-only"))
    first = browser.get("/saml/sso/redirect?" + query)
    assert first.status == 303 and first.location.startswith("/login?flow=")

    refused(browser.get("/saml/sso/redirect?" + query))


def test_xxe_in_a_posted_request_is_refused_before_parsing(browser, web_idp, sp):
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + request_for(
        web_idp, destination=web_idp.sso_post_url
    ).replace(b"</saml:Issuer>", b"&x;</saml:Issuer>")
    page = browser.post("/saml/sso/post", {"SAMLRequest": base64.b64encode(xxe).decode()})
    refused(page)
    assert "root:" not in page.text


@pytest.mark.parametrize(
    "query",
    [
        "",
        "SAMLRequest=not-base64!!",
        "SAMLRequest=" + quote(base64.b64encode(b"plain text, not deflated").decode(), safe=""),
        "SAMLRequest=a&SAMLRequest=b",
        "SAMLRequest=abcd&SAMLResponse=abcd",
        "SAMLRequest=abcd&SAMLEncoding=urn:other",
    ],
    ids=["nothing", "not-base64", "not-deflate", "repeated", "both", "encoding"],
)
def test_malformed_redirect_messages_get_a_clear_page(browser, query):
    refused(browser.get("/saml/sso/redirect?" + query))


def test_deflate_bomb_is_refused(browser, web_idp, sp):
    bomb = request_for(web_idp).replace(b"</saml:Issuer>", b"</saml:Issuer>" + b" " * (2 * 1024 * 1024))
    refused(browser.get("/saml/sso/redirect?" + redirect_query(bomb)))


def test_authentic_request_that_cannot_be_honoured_gets_a_signed_status_response_at_its_acs(browser, web_idp, sp):
    policy = '<samlp:NameIDPolicy Format="urn:example:unsupported"/>'
    page = browser.get("/saml/sso/redirect?" + redirect_query(request_for(web_idp, inner=policy), "rs-1"))

    posted = posted_form(page)
    assert posted.action == ACS and posted.fields["RelayState"] == "rs-1"
    root = etree.fromstring(base64.b64decode(posted.saml_response))
    codes = root.xpath("//samlp:StatusCode/@Value", namespaces={"samlp": c.NS_SAMLP})
    assert codes == [c.STATUS_REQUESTER, c.STATUS_INVALID_NAMEID_POLICY]
    assert root.get("InResponseTo") == "_req-0001"
    assert verify_enveloped(root, [Certificate(web_idp.signing.cert_pem)]) is root


@pytest.mark.parametrize(
    "url",
    [
        "/saml/init",
        "/saml/init?sp=https://evil.example/sp",
        "/saml/init?sp=" + SP + "&RelayState=" + "x" * 81,
        "/saml/sso/continue?req=forged",
        "/saml/slo/notify?t=forged",
    ],
    ids=["no-sp", "unknown-sp", "long-relay-state", "forged-continuation", "forged-logout-ticket"],
)
def test_bad_parameters_on_local_endpoints_get_a_clear_page(browser, sp, url):
    page = browser.get(url)
    assert page.status == 400, page.text[:300]
    assert "Traceback" not in page.text


def test_resume_without_a_finished_flow_says_to_start_again(browser):
    page = browser.get("/saml/sso/resume?flow=nothing-here")
    assert page.status == 400


def test_replay_guard_fails_closed_when_the_ephemeral_store_is_down(app, browser, web_idp, sp, monkeypatch):
    def down(*args, **kwargs):
        raise EphemeralUnavailable("test: store down")

    monkeypatch.setattr(app.extensions["varco"].ephemeral, "add", down)

    page = browser.get("/saml/sso/redirect?" + redirect_query(request_for(web_idp)))

    assert page.status == 503


def test_sp_removed_while_its_user_logs_in_gets_a_clear_page_not_an_assertion(app, browser, web_idp, sp, make_account):
    make_account()
    started = browser.get("/saml/sso/redirect?" + redirect_query(request_for(web_idp)))
    app.extensions["varco_saml"].registry.remove(SP)

    page = login_through(browser, started)

    refused(page, NOT_REGISTERED)


def test_logout_request_without_a_name_id_gets_a_logout_response_refusing_it(app, browser, web_idp, sp_keys):
    slo = f'<md:SingleLogoutService Binding="{c.BINDING_HTTP_REDIRECT}" Location="https://app.uni.example/slo"/>'
    register(app, sp_metadata_xml(SP, sp_keys[1], sp_extra=slo))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_logout-1" Version="2.0" '
        f'IssueInstant="{now}" Destination="{web_idp.slo_redirect_url}"><saml:Issuer>{SP}</saml:Issuer>'
        "</samlp:LogoutRequest>"
    ).encode()
    encoded = base64.b64encode(deflate_redirect(xml)).decode()
    query = sign_redirect_query([("SAMLRequest", encoded)], SigningCredential(*sp_keys))

    page = browser.get(f"/saml/slo/redirect?{query}")

    assert page.status == 303 and page.location.startswith("https://app.uni.example/slo?SAMLResponse=")
    answer = zlib.decompress(base64.b64decode(parse_qs(urlsplit(page.location).query)["SAMLResponse"][0]), -15)
    assert b"LogoutResponse" in answer and c.STATUS_REQUEST_UNSUPPORTED.encode() in answer
