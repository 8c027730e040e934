"""Single Logout through the HTTP endpoints: SP-initiated (Redirect and POST), propagation to the other
SAML participants in hidden frames, and logout from Varco's own /logout page, on both store pairs."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import urlsplit

import pytest
from onelogin_peer import OneLoginSP
from pysaml2_peer import Pysaml2SP
from saml2 import BINDING_HTTP_POST
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from saml_web import continue_link, frames, local, login_through, posted_form, query_dict, register

from idp.saml.bindings import redirect_url
from idp.saml.slo import build_logout_request
from idp.sessions import SSO_COOKIE

LMS_SLS = "https://lms.uni.example/saml/sls"
WIKI_SLS = "https://wiki.uni.example/saml/sls"


@pytest.fixture
def web_idp(app):
    return app.extensions["varco_saml"].idp


@pytest.fixture
def lms(app, web_idp, sp_keys, make_account):
    make_account()
    peer = OneLoginSP.create(web_idp, sp_keys)
    register(app, peer.metadata(), sign_response=True)
    return peer


@pytest.fixture
def wiki(app, browser, sp_keys, tmp_path):
    idp_metadata = browser.client.get("/saml/metadata").get_data()
    peer = Pysaml2SP.create(idp_metadata, sp_keys, tmp_path)
    register(app, peer.metadata())
    return peer


def sign_in_to_lms(browser, lms):
    request_id, query = lms.redirect_authn_request()
    page = browser.get(f"/saml/sso/redirect?{query}")
    if page.status == 303:
        page = login_through(browser, page)
    accepted = lms.accept_response(posted_form(page).saml_response, request_id)
    return accepted.get_nameid(), accepted.get_session_index()


def sign_in_to_wiki(browser, wiki, web_idp):
    request_id, query = wiki.redirect_authn_request(web_idp.entity_id)
    page = browser.get(f"/saml/sso/redirect?{query}")
    if page.status == 303:
        page = login_through(browser, page)
    accepted = wiki.accept_response(posted_form(page).saml_response, request_id)
    return accepted.assertion.subject.name_id, accepted.assertion.authn_statement[0].session_index


def signed_in(browser) -> bool:
    return browser.client.get("/account").status_code == 200


def test_sp_initiated_logout_ends_the_session_and_the_sp_accepts_the_answer(browser, lms):
    name_id, session_index = sign_in_to_lms(browser, lms)
    assert signed_in(browser)
    request_id, query = lms.logout_request(name_id=name_id, session_index=session_index)

    page = browser.get(f"/saml/slo/redirect?{query}")

    assert page.status == 303 and page.location.startswith(LMS_SLS + "?")
    raw_query = urlsplit(page.location).query
    lms.accept_logout_response(raw_query, query_dict(raw_query), request_id)
    assert browser.client.get_cookie(SSO_COOKIE) is None
    assert not signed_in(browser)


def test_logout_from_one_sp_signs_the_browser_out_of_the_other_in_a_hidden_frame(browser, web_idp, lms, wiki):
    sign_in_to_lms(browser, lms)
    name_id, session_index = sign_in_to_wiki(browser, wiki, web_idp)
    _, query = wiki.logout_request(web_idp.entity_id, name_id, session_index)

    response = browser.client.get(f"/saml/slo/redirect?{query}")

    page_text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "frame-src 'self' https://lms.uni.example" in response.headers["Content-Security-Policy"]
    (frame,) = frames(page_text)
    hop = browser.get(frame)
    assert hop.status == 303 and hop.location.startswith(LMS_SLS + "?")
    raw_query = urlsplit(hop.location).query
    answer = lms.answer_logout_request(raw_query, query_dict(raw_query))
    done = browser.get(local(answer))
    assert done.status == 200 and 'data-logout="done"' in done.text
    back = continue_link(page_text)
    assert back.startswith(WIKI_SLS + "?")
    assert wiki.accept_logout_response(urlsplit(back).query) is not None
    assert not signed_in(browser)


def test_logout_request_over_post_continues_on_a_same_site_get_and_ends_the_session(browser, web_idp, lms, wiki):
    name_id, session_index = sign_in_to_wiki(browser, wiki, web_idp)
    client = wiki.client
    _, request = client.create_logout_request(
        web_idp.slo_post_url,
        web_idp.entity_id,
        name_id=name_id,
        session_indexes=[session_index],
        sign=True,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    form = {"SAMLRequest": base64.b64encode(str(request).encode()).decode(), "RelayState": "bye"}

    hop = browser.post("/saml/slo/post", form)

    assert hop.status == 303 and hop.location.startswith("/saml/slo/continue?req=")
    page = browser.get(hop.location)
    assert page.status == 303 and page.location.startswith(WIKI_SLS + "?")
    assert not signed_in(browser)
    assert browser.get(hop.location).status == 400  # the continuation is single-use


def test_logout_from_the_varco_page_frames_a_logout_request_the_sp_accepts(app, browser, lms):
    sign_in_to_lms(browser, lms)
    confirm = browser.get("/logout")

    response = browser.client.post(confirm.action, data={"csrf_token": confirm.token})

    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "frame-src 'self' https://lms.uni.example" in response.headers["Content-Security-Policy"]
    (frame,) = frames(text)
    hop = browser.get(frame)
    raw_query = urlsplit(hop.location).query
    lms.accept_logout_request(raw_query, query_dict(raw_query))
    assert browser.get(frame).status == 400  # one LogoutRequest per ticket


def test_logout_request_for_another_session_is_refused_and_ends_nothing(browser, lms):
    name_id, _ = sign_in_to_lms(browser, lms)
    _, query = lms.logout_request(name_id=name_id, session_index="_someone-elses-session")

    page = browser.get(f"/saml/slo/redirect?{query}")

    assert page.status == 303 and page.location.startswith(LMS_SLS + "?")
    response_xml = base64.b64decode(query_dict(urlsplit(page.location).query)["SAMLResponse"])
    assert b"UnknownPrincipal" in zlib.decompress(response_xml, -15)
    assert signed_in(browser)


def test_logout_request_without_a_session_is_answered_with_success(browser, lms):
    request_id, query = lms.logout_request(name_id="_gone", session_index="_gone")

    page = browser.get(f"/saml/slo/redirect?{query}")

    raw_query = urlsplit(page.location).query
    lms.accept_logout_response(raw_query, query_dict(raw_query), request_id)


def test_unsolicited_logout_response_gets_a_clear_page(browser, web_idp, lms, wiki):
    name_id, _ = sign_in_to_lms(browser, lms)
    # A LogoutResponse Varco never asked for: the SP answers a request it made up.
    sp = browser.client.application.extensions["varco_saml"].registry.lookup("https://lms.uni.example/saml/metadata")
    made_up = build_logout_request(sp, name_id, "urn:oasis:names:tc:SAML:2.0:nameid-format:transient", None, web_idp)
    raw_query = urlsplit(redirect_url(made_up, web_idp.signing)).query
    answer = lms.answer_logout_request(raw_query, query_dict(raw_query))

    page = browser.get(local(answer))

    assert page.status == 400
    assert signed_in(browser)


def test_post_bound_slo_endpoint_gets_its_logout_request_in_an_auto_posted_frame(
    app, browser, web_idp, sp_keys, tmp_path, lms
):
    idp_metadata = browser.client.get("/saml/metadata").get_data()
    wiki = Pysaml2SP.create(idp_metadata, sp_keys, tmp_path, slo_binding=BINDING_HTTP_POST)
    register(app, wiki.metadata())
    sign_in_to_lms(browser, lms)
    sign_in_to_wiki(browser, wiki, web_idp)
    confirm = browser.get("/logout")
    response = browser.client.post(confirm.action, data={"csrf_token": confirm.token})

    sources = frames(response.get_data(as_text=True))
    assert len(sources) == 2
    framed = [browser.client.get(src) for src in sources]
    posted = next(r for r in framed if r.status_code == 200)
    assert posted.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in posted.headers["Content-Security-Policy"]
    form = posted_form(posted.get_data(as_text=True))
    assert form.action == WIKI_SLS and "SAMLRequest" in form.fields


def test_sp_with_a_post_bound_slo_endpoint_gets_its_logout_response_posted(
    app, browser, web_idp, sp_keys, tmp_path, make_account
):
    make_account()
    idp_metadata = browser.client.get("/saml/metadata").get_data()
    wiki = Pysaml2SP.create(idp_metadata, sp_keys, tmp_path, slo_binding=BINDING_HTTP_POST)
    register(app, wiki.metadata())
    name_id, session_index = sign_in_to_wiki(browser, wiki, web_idp)
    _, query = wiki.logout_request(web_idp.entity_id, name_id, session_index)

    response = browser.client.get(f"/saml/slo/redirect?{query}")

    posted = posted_form(response.get_data(as_text=True))
    assert posted.action == WIKI_SLS
    assert f"form-action {WIKI_SLS}" in response.headers["Content-Security-Policy"]
    assert wiki.accept_posted_logout_response(posted.saml_response) is not None
    assert not signed_in(browser)


def test_logout_started_by_an_oidc_client_also_signs_out_of_saml_services(app, browser, lms):
    from idp.oidc.clients import NewClient

    sign_in_to_lms(browser, lms)
    app.extensions["varco_oidc"].clients.add(
        NewClient(
            client_id="webmail",
            name="Webmail",
            redirect_uris=("https://mail.uni.example/cb",),
            post_logout_redirect_uris=("https://mail.uni.example/bye",),
        )
    )
    confirm = browser.get("/oidc/logout?client_id=webmail&post_logout_redirect_uri=https://mail.uni.example/bye")
    assert confirm.status == 200
    done = browser.client.post(
        confirm.action,
        data={
            "csrf_token": confirm.token,
            "confirm": "yes",
            "client_id": "webmail",
            "post_logout_redirect_uri": "https://mail.uni.example/bye",
        },
    )
    text = done.get_data(as_text=True)
    assert done.status_code == 200
    (frame,) = frames(text)
    assert 'content="3;url=https://mail.uni.example/bye"' in text
    hop = browser.get(frame)
    raw_query = urlsplit(hop.location).query
    lms.accept_logout_request(raw_query, query_dict(raw_query))
    assert browser.client.get_cookie(SSO_COOKIE) is None
