"""Malformed, oversized, duplicated and mistyped input: always an OAuth error, never a 500."""

from __future__ import annotations

import pytest

from tests.oidc.conftest import pkce, token_request

JSON_ENDPOINTS = ["/oidc/token", "/oidc/revoke", "/oidc/introspect", "/oidc/device_authorization", "/oidc/par"]
NASTY_VALUES = ["", "\x00", "%00", "a" * 3000, "ü" * 100, "\r\nX-Injected: 1", "' OR 1=1 --", "{}", "[]",
                "..%2f..%2f", "\ud800".encode("utf-8", "surrogatepass").decode("latin-1")]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_body_where_a_form_is_expected_is_invalid_request(browser, confidential, path):
    response = browser.client.post(path, json={"grant_type": "client_credentials", "token": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_duplicated_form_parameters_are_invalid_request(browser, confidential, path):
    response = browser.client.post(path, data={"token": ["a", "b"], "grant_type": ["x", "y"], "client_id": "webapp"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_oversized_body_is_an_oauth_error(browser, confidential, path):
    response = browser.client.post(path, data={"token": "x" * 400_000})
    assert response.status_code in (400, 413)
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("value", NASTY_VALUES)
def test_nasty_values_in_every_token_parameter_never_cause_a_500(browser, confidential, value):
    _, secret = confidential
    for grant in ("authorization_code", "refresh_token", "client_credentials",
                  "urn:ietf:params:oauth:grant-type:device_code", value):
        data = {"grant_type": grant, "code": value, "refresh_token": value, "device_code": value,
                "redirect_uri": value, "code_verifier": value, "scope": value}
        response = token_request(browser.client, data, auth=("webapp", secret))
        assert response.status_code in (400, 401), (grant, response.status_code)
        assert response.get_json()["error"]
    for path in ("/oidc/revoke", "/oidc/introspect"):
        headers = {"Authorization": "Basic " + value} if "\n" not in value else {}
        response = browser.client.post(path, data={"token": value, "token_type_hint": value}, headers=headers)
        assert response.status_code in (200, 400, 401) and response.is_json


@pytest.mark.parametrize("value", NASTY_VALUES)
def test_nasty_values_at_the_authorization_endpoint_never_cause_a_500(logged_in, confidential, value):
    _, challenge = pkce()
    for name in ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "prompt", "max_age",
                 "code_challenge", "code_challenge_method", "acr_values", "ui_locales", "login_hint",
                 "request_uri", "request", "response_mode"):
        params = {"response_type": "code", "client_id": "webapp", "redirect_uri": "https://rp.example.org/cb",
                  "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256", name: value}
        response = logged_in.client.get("/oidc/authorize", query_string=params)
        assert response.status_code in (200, 302, 303, 400), (name, response.status_code)


def test_authorization_endpoint_refuses_json_bodies_and_odd_methods(logged_in, confidential):
    response = logged_in.client.post("/oidc/authorize", json={"client_id": "webapp"})
    assert response.status_code == 400
    response = logged_in.client.put("/oidc/authorize")
    assert response.status_code == 405


def test_non_utf8_query_string_is_handled(logged_in, confidential):
    response = logged_in.client.get("/oidc/authorize?client_id=%ff%fe&redirect_uri=%c3%28")
    assert response.status_code == 400


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic abc", "Bearer a.b.c", "Bearer vat1.!!!",
                                    "Bearer " + "x" * 5000, "bearer vat1.AAAA"])
def test_userinfo_with_bad_tokens_answers_invalid_token(browser, confidential, header):
    response = browser.client.get("/oidc/userinfo", headers={"Authorization": header})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("hint", ["", "x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 9000])
def test_logout_with_a_bad_id_token_hint_shows_a_page(logged_in, confidential, hint):
    response = logged_in.client.get("/oidc/logout", query_string={"id_token_hint": hint,
                                                                   "post_logout_redirect_uri": "https://evil/"})
    assert response.status_code == 400 and "Location" not in response.headers


def test_device_page_with_junk_codes_is_refused_and_throttled(logged_in, confidential):
    page = logged_in.get("/device")
    for attempt in range(12):
        page = logged_in.submit(page, user_code="\x00" * attempt + "ZZZZ")
        assert page.status == 400
    assert "Troppi tentativi" in page.text  # Italian is the default locale


def test_repeated_parameter_with_a_non_ascii_name_is_invalid_request(browser, confidential):
    response = browser.client.post("/oidc/token", data={"ü\"\\": ["1", "2"], "grant_type": "client_credentials"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_device_code_guessing_is_throttled_per_address_across_browsers(app, person):
    from tests.support.pages import Browser

    statuses = []
    for _ in range(6):
        browser = Browser(app.test_client())
        browser.login("mario.rossi", "Correct-Horse-9")
        page = browser.get("/device")
        for _ in range(10):
            page = browser.submit(page, user_code="ZZZZ-ZZZZ")
        statuses.append("Troppi tentativi" in page.text)
    assert statuses[:5] == [False] * 5 and statuses[5] is True
