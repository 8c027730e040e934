"""Client credentials, revocation, introspection, PAR, device grant, logout, consent and claims."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc.conftest import RP, authorize_url, get_code, pkce, query, token_request

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


def tokens_for(browser, secret, client_id="webapp", **extra):
    verifier, challenge = pkce()
    code = get_code(browser, challenge, client_id, **extra)["code"]
    response = token_request(
        browser.client,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": RP, "code_verifier": verifier},
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def id_claims(browser, value):
    keys = KeySet.import_key_set(browser.client.get("/oidc/jwks").get_json())
    decoded = jwt.decode(value, keys, algorithms=["RS256", "ES256"])
    return decoded.header, decoded.claims


def test_client_credentials_grant_issues_a_token_without_refresh(browser, register):
    _, secret = register("svc", grant_types=("client_credentials",), scopes=("profile",), redirect_uris=())
    response = token_request(browser.client, {"grant_type": "client_credentials", "scope": "profile"},
                             auth=("svc", secret))
    body = response.get_json()
    assert response.status_code == 200 and body["access_token"] and "refresh_token" not in body
    refused = token_request(browser.client, {"grant_type": "client_credentials", "scope": "email"},
                            auth=("svc", secret))
    assert refused.get_json()["error"] == "invalid_scope"


def test_client_secret_post_works_for_clients_registered_with_it(browser, register):
    _, secret = register("svc", grant_types=("client_credentials",), scopes=("profile",), redirect_uris=(),
                         token_endpoint_auth_method="client_secret_post")
    response = token_request(browser.client, {"grant_type": "client_credentials", "client_id": "svc",
                                              "client_secret": secret})
    assert response.status_code == 200
    basic = token_request(browser.client, {"grant_type": "client_credentials"}, auth=("svc", secret))
    assert basic.get_json()["error"] == "invalid_client"


def test_public_client_uses_pkce_without_secret(logged_in, register):
    register("spa", public=True)
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge, "spa")["code"]
    response = logged_in.client.post("/oidc/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": RP, "code_verifier": verifier,
        "client_id": "spa"})
    assert response.status_code == 200, response.get_json()


def test_revoking_a_refresh_token_revokes_the_grant(logged_in, confidential):
    _, secret = confidential
    tokens = tokens_for(logged_in, secret)
    response = logged_in.client.post("/oidc/revoke", data={"token": tokens["refresh_token"]},
                                     headers=basic("webapp", secret))
    assert response.status_code == 200
    info = logged_in.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401


def basic(client_id, secret):
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_introspection_needs_an_authenticated_caller(logged_in, confidential, register):
    _, secret = confidential
    tokens = tokens_for(logged_in, secret)
    anonymous = logged_in.client.post("/oidc/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "invalid_client"
    register("spa", public=True)
    public = logged_in.client.post("/oidc/introspect", data={"token": tokens["access_token"], "client_id": "spa"})
    assert public.get_json()["error"] == "invalid_client"
    mine = logged_in.client.post("/oidc/introspect", data={"token": tokens["access_token"]},
                                 headers=basic("webapp", secret)).get_json()
    assert mine["active"] is True and mine["client_id"] == "webapp" and mine["username"] == "mario.rossi"
    logged_in.client.post("/oidc/revoke", data={"token": tokens["access_token"]}, headers=basic("webapp", secret))
    gone = logged_in.client.post("/oidc/introspect", data={"token": tokens["access_token"]},
                                 headers=basic("webapp", secret)).get_json()
    assert gone == {"active": False}


def test_jwt_access_tokens_follow_rfc_9068(logged_in, register):
    _, secret = register("webapp", access_token_format="jwt")
    tokens = tokens_for(logged_in, secret)
    header, claims = id_claims(logged_in, tokens["access_token"])
    assert header["typ"] == "at+jwt"
    assert {"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} <= set(claims)
    info = logged_in.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200


def test_es256_id_tokens_for_clients_that_ask(logged_in, register):
    _, secret = register("webapp", id_token_signed_response_alg="ES256")
    header, _ = id_claims(logged_in, tokens_for(logged_in, secret)["id_token"])
    assert header["alg"] == "ES256" and header["kid"]


def test_pairwise_subjects_differ_per_sector_and_match_userinfo(logged_in, register):
    _, secret_a = register("a", subject_type="pairwise", sector_identifier="a.example")
    _, secret_b = register("b", subject_type="pairwise", sector_identifier="b.example")
    a = tokens_for(logged_in, secret_a, "a")
    b = tokens_for(logged_in, secret_b, "b")
    sub_a = id_claims(logged_in, a["id_token"])[1]["sub"]
    sub_b = id_claims(logged_in, b["id_token"])[1]["sub"]
    assert sub_a != sub_b
    info = logged_in.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {a['access_token']}"})
    assert info.get_json()["sub"] == sub_a


def test_university_claims_and_fiscal_number_only_when_allowed(browser, make_account, register):
    make_account("anna.bianchi", "Correct-Horse-9", fiscal_code="BNCNNA80A41H501R", citizenship="IT")
    browser.login("anna.bianchi", "Correct-Horse-9")
    scopes = ("openid", "eduperson", "fiscal_number")
    _, plain = register("plain", scopes=scopes)
    _, trusted = register("trusted", scopes=scopes, allow_fiscal_number=True)
    scope = "openid eduperson fiscal_number"
    info_plain = id_claims(browser, tokens_for(browser, plain, "plain", scope=scope)["id_token"])[1]
    info_trusted = id_claims(browser, tokens_for(browser, trusted, "trusted", scope=scope)["id_token"])[1]
    assert "fiscal_number" not in info_plain
    assert info_trusted["fiscal_number"] == "BNCNNA80A41H501R"
    assert info_plain["eduperson_affiliation"] == ["student", "member"]
    assert info_plain["eduperson_principal_name"] == "anna.bianchi@uni.example.it"
    assert info_plain["schac_home_organization"] == "uni.example.it"


def test_pushed_authorization_request_stands_for_its_parameters_once(logged_in, confidential):
    _, secret = confidential
    _, challenge = pkce()
    pushed = logged_in.client.post("/oidc/par", data={
        "response_type": "code", "client_id": "webapp", "redirect_uri": RP, "scope": "openid",
        "state": "par-state", "code_challenge": challenge, "code_challenge_method": "S256"},
        headers=basic("webapp", secret))
    assert pushed.status_code == 201, pushed.get_json()
    uri = pushed.get_json()["request_uri"]
    page = logged_in.get("/oidc/authorize?" + urlencode({"client_id": "webapp", "request_uri": uri}))
    assert page.status == 302 and query(page.location)["state"] == "par-state"
    again = logged_in.get("/oidc/authorize?" + urlencode({"client_id": "webapp", "request_uri": uri}))
    assert again.status == 400 and again.location is None


def test_acr_values_and_mfa_requirement_reach_the_login_request(browser, person, register, app):
    register("webapp", require_mfa=True)
    _, challenge = pkce()
    page = browser.get(authorize_url("webapp", challenge, acr_values="https://refeds.org/profile/mfa",
                                     login_hint="mario.rossi", ui_locales="it"))
    flow_id = query(page.location)["flow"]
    raw = app.extensions["varco"].ephemeral.get(f"flow:{flow_id}")
    assert '"require_mfa": true' in raw and "https://refeds.org/profile/mfa" in raw and '"ui_locales": ["it"]' in raw


@pytest.mark.mfa_policy
def test_require_mfa_client_steps_up_a_password_session_and_gets_an_mfa_id_token(app, make_account, register):
    from tests.support.mfa import code, enrolled, set_login_count
    from tests.support.pages import Browser

    account, secret = enrolled(app, make_account, citizenship="FR")
    set_login_count(app, account.id, 0)  # the account's own rule does not ask; the client will
    browser = Browser(app.test_client())
    assert browser.login("mario.rossi", "Correct-Horse-9").location == "/account"
    _, secret_rp = register("webapp", require_mfa=True)
    verifier, challenge = pkce()
    page = browser.follow(browser.get(authorize_url("webapp", challenge)))
    assert 'name="otp"' in page.text and 'name="password"' not in page.text
    back = browser.get(browser.submit(page, otp=code(secret, 1)).location)
    params = query(back.location)
    response = token_request(
        browser.client,
        {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": RP, "code_verifier": verifier},
        auth=("webapp", secret_rp),
    )
    _, claims = id_claims(browser, response.get_json()["id_token"])
    assert claims["acr"] == "https://refeds.org/profile/mfa" and "otp" in claims["amr"]
    # Now the session satisfies the client at once, and prompt=none works.
    again = browser.get(authorize_url("webapp", challenge, prompt="none"))
    assert "code" in query(again.location)


def test_consent_is_asked_once_per_scope_set_and_revocable(logged_in, register):
    register("thirdparty", first_party=False)
    _, challenge = pkce()
    page = logged_in.get(authorize_url("thirdparty", challenge))
    assert page.status == 200 and "Thirdparty" in page.text
    import re

    pending = re.search(r'name="pending" value="([^"]+)"', page.text).group(1)
    approved = logged_in.post("/oidc/consent", {"csrf_token": page.token, "pending": pending,
                                                "decision": "approve"})
    assert approved.status == 302 and "code" in query(approved.location)
    again = logged_in.get(authorize_url("thirdparty", challenge))
    assert again.status == 302
    apps = logged_in.get("/account/apps")
    assert "Thirdparty" in apps.text
    logged_in.post("/account/apps", {"csrf_token": apps.token, "client_id": "thirdparty"})
    asked = logged_in.get(authorize_url("thirdparty", challenge))
    assert asked.status == 200
    none = logged_in.get(authorize_url("thirdparty", challenge, prompt="none"))
    assert query(none.location)["error"] == "consent_required"


def test_device_flow_polls_slow_down_and_pending_until_approved(logged_in, register):
    _, secret = register("kiosk", grant_types=(DEVICE,), scopes=("openid", "profile"), redirect_uris=())
    grant = logged_in.client.post("/oidc/device_authorization", data={"scope": "openid profile"},
                                  headers=basic("kiosk", secret)).get_json()
    poll = {"grant_type": DEVICE, "device_code": grant["device_code"]}
    assert token_request(logged_in.client, poll, auth=("kiosk", secret)).get_json()["error"] == "authorization_pending"
    assert token_request(logged_in.client, poll, auth=("kiosk", secret)).get_json()["error"] == "slow_down"
    page = logged_in.get("/device?user_code=" + grant["user_code"])
    confirm = logged_in.submit(page, user_code=grant["user_code"].lower())
    logged_in.submit(confirm, user_code=grant["user_code"], decision="approve")
    done = token_request(logged_in.client, poll, auth=("kiosk", secret))
    assert done.status_code == 200 and done.get_json()["access_token"]
    assert token_request(logged_in.client, poll, auth=("kiosk", secret)).status_code == 400


def test_expired_device_code_answers_expired_token(logged_in, register, op):
    _, secret = register("kiosk", grant_types=(DEVICE,), scopes=("openid",), redirect_uris=())
    grant = logged_in.client.post("/oidc/device_authorization", data={"scope": "openid"},
                                  headers=basic("kiosk", secret)).get_json()
    from idp.oidc.device import DeviceStore

    store = DeviceStore(op.ephemeral)
    credential = store.by_device_code(grant["device_code"])
    credential.expires_at = 0
    store.save(credential)
    response = token_request(logged_in.client, {"grant_type": DEVICE, "device_code": grant["device_code"]},
                             auth=("kiosk", secret))
    assert response.get_json()["error"] == "expired_token"


def test_logout_never_redirects_to_an_unregistered_uri(logged_in, confidential):
    _, secret = confidential
    tokens = tokens_for(logged_in, secret)
    for target in ("https://evil.example/", "https://rp.example.org/bye/../x", "//evil.example"):
        page = logged_in.get("/oidc/logout?" + urlencode({"id_token_hint": tokens["id_token"],
                                                         "post_logout_redirect_uri": target}))
        assert page.status == 400 and page.location is None
    no_client = logged_in.get("/oidc/logout?" + urlencode({"post_logout_redirect_uri": "https://rp.example.org/bye"}))
    assert no_client.status == 400 and no_client.location is None
    ok = logged_in.get("/oidc/logout?" + urlencode({"id_token_hint": tokens["id_token"],
                                                   "post_logout_redirect_uri": "https://rp.example.org/bye"}))
    assert ok.status == 303 and ok.location == "https://rp.example.org/bye"


def test_logout_sends_a_signed_logout_token_to_every_rp_of_the_session(logged_in, register, op, receiver):
    rp = receiver(failures=1)  # the first delivery fails: Varco must retry
    _, secret = register("webapp", backchannel_logout_uri=rp.uri)
    tokens = tokens_for(logged_in, secret)
    page = logged_in.get("/oidc/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
    assert page.status == 200
    op.backchannel.wait()
    assert len(rp.received) == 1
    header, claims = id_claims(logged_in, rp.received[0])
    _, id_token = id_claims(logged_in, tokens["id_token"])
    assert header["typ"] == "logout+jwt"
    assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"] and claims["aud"] == "webapp"
    assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"] and "nonce" not in claims


def test_signing_out_of_varco_notifies_rps_and_ends_online_grants_only(logged_in, register, op, receiver):
    rp = receiver(status=204)
    _, secret = register("webapp", backchannel_logout_uri=rp.uri)
    online = tokens_for(logged_in, secret, scope="openid profile")
    offline = tokens_for(logged_in, secret, scope="openid offline_access")
    page = logged_in.get("/logout")
    logged_in.submit(page)
    op.backchannel.wait()
    assert len(rp.received) == 1
    gone = token_request(logged_in.client, {"grant_type": "refresh_token", "refresh_token": online["refresh_token"]},
                         auth=("webapp", secret))
    assert gone.get_json()["error"] == "invalid_grant"
    kept = token_request(logged_in.client, {"grant_type": "refresh_token", "refresh_token": offline["refresh_token"]},
                         auth=("webapp", secret))
    assert kept.status_code == 200


def test_browser_clients_may_call_the_token_endpoint_cross_origin(browser, confidential):
    preflight = browser.client.options("/oidc/token", headers={"Origin": "https://spa.example",
                                                               "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    authorize = browser.client.get("/oidc/authorize", headers={"Origin": "https://spa.example"})
    assert "Access-Control-Allow-Origin" not in authorize.headers


def test_account_pages_link_the_applications_page_in_both_languages(logged_in, confidential):
    account = logged_in.get("/account?lang=it")
    assert "/account/apps" in account.text and "Applicazioni e sessioni" in account.text
    tokens_for(logged_in, confidential[1])
    apps = logged_in.get("/account/apps?lang=it")
    assert "Applicazioni" in apps.text and "Webapp" in apps.text and "accesso in corso" in apps.text
    english = logged_in.get("/account/apps?lang=en")
    assert "Remove access" in english.text


def test_prompt_login_asks_for_the_password_again_despite_the_session(logged_in, confidential):
    _, challenge = pkce()
    for prompt in ("login", "select_account"):
        page = logged_in.get(authorize_url("webapp", challenge, prompt=prompt))
        assert page.status == 303 and page.location.startswith("/login?flow=")


def test_login_hint_prefills_the_login_form(browser, person, confidential):
    _, challenge = pkce()
    page = browser.follow(browser.get(authorize_url("webapp", challenge, login_hint="mario.rossi")))
    assert 'value="mario.rossi"' in page.text


def test_public_client_refreshes_without_a_secret_and_rotation_still_applies(logged_in, register):
    register("spa", public=True)
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge, "spa")["code"]
    first = logged_in.client.post("/oidc/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": RP, "code_verifier": verifier,
        "client_id": "spa"}).get_json()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "spa"}
    assert logged_in.client.post("/oidc/token", data=data).status_code == 200
    assert logged_in.client.post("/oidc/token", data=data).get_json()["error"] == "invalid_grant"


def test_unknown_client_at_the_token_endpoint_is_invalid_client(browser, confidential):
    response = token_request(browser.client, {"grant_type": "client_credentials"}, auth=("nobody", "x" * 40))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_device_code_denied_by_the_person_answers_access_denied(logged_in, register):
    _, secret = register("kiosk", grant_types=(DEVICE,), scopes=("openid",), redirect_uris=())
    grant = logged_in.client.post("/oidc/device_authorization", data={"scope": "openid"},
                                  headers=basic("kiosk", secret)).get_json()
    page = logged_in.get("/device")
    confirm = logged_in.submit(page, user_code=grant["user_code"])
    logged_in.submit(confirm, user_code=grant["user_code"], decision="deny")
    response = token_request(logged_in.client, {"grant_type": DEVICE, "device_code": grant["device_code"]},
                             auth=("kiosk", secret))
    assert response.get_json()["error"] == "access_denied"


def test_device_page_sends_a_signed_out_person_to_log_in_first(browser, person):
    page = browser.get("/device?user_code=BCDF-GHJK")
    assert page.status == 303 and page.location.startswith("/login?next=")


def test_removing_an_application_from_the_account_revokes_its_tokens(logged_in, confidential):
    _, secret = confidential
    tokens = tokens_for(logged_in, secret)
    apps = logged_in.get("/account/apps")
    logged_in.post("/account/apps", {"csrf_token": apps.token, "client_id": "webapp"})
    info = logged_in.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401
    refreshed = token_request(logged_in.client, {"grant_type": "refresh_token",
                                                 "refresh_token": tokens["refresh_token"]}, auth=("webapp", secret))
    assert refreshed.get_json()["error"] == "invalid_grant"


def test_pushed_request_errors_are_json_and_never_redirects(logged_in, confidential):
    _, secret = confidential
    pushed = logged_in.client.post("/oidc/par", data={
        "response_type": "code", "client_id": "webapp", "redirect_uri": RP, "scope": "openid",
        "state": "pushed-state"}, headers=basic("webapp", secret))
    assert pushed.status_code == 400 and pushed.get_json()["error"] == "invalid_request"  # no PKCE
    assert "Location" not in pushed.headers


def test_disabled_account_cannot_refresh(logged_in, confidential, app):
    _, secret = confidential
    tokens = tokens_for(logged_in, secret)
    app.extensions["varco"].accounts.set_status("mario.rossi", "disabled", actor="test")
    refreshed = token_request(logged_in.client, {"grant_type": "refresh_token",
                                                 "refresh_token": tokens["refresh_token"]}, auth=("webapp", secret))
    assert refreshed.get_json()["error"] == "invalid_grant"


def test_logout_without_proof_of_the_rp_asks_before_ending_the_session(logged_in, confidential):
    page = logged_in.get("/oidc/logout")
    assert page.status == 200 and 'name="confirm"' in page.text
    assert logged_in.get("/account").status == 200  # a GET alone never signs anybody out
    done = logged_in.post("/oidc/logout", {"csrf_token": page.token, "confirm": "yes"})
    assert done.status == 200
    assert logged_in.get("/account").status == 303


def test_prompt_consent_asks_even_a_first_party_client(logged_in, confidential):
    _, challenge = pkce()
    page = logged_in.get(authorize_url("webapp", challenge, prompt="consent"))
    assert page.status == 200 and 'name="decision"' in page.text


@pytest.mark.mfa_policy
def test_a_login_abandoned_at_the_second_factor_yields_no_code_and_no_token(app, make_account, register):
    from tests.support.mfa import enrolled
    from tests.support.pages import Browser

    enrolled(app, make_account, citizenship="FR")  # from now on the account's own rule demands 2FA
    _, secret_rp = register("webapp", require_mfa=True)
    verifier, challenge = pkce()
    browser = Browser(app.test_client())
    login_page = browser.follow(browser.get(authorize_url("webapp", challenge)))
    otp_page = browser.follow(browser.submit(login_page, username="mario.rossi", password="Correct-Horse-9"))
    assert 'name="otp"' in otp_page.text
    flow_id = query(otp_page.action)["flow"]
    # The person walks away. Whatever the RP or an attacker now tries, nothing was issued:
    resumed = browser.get(f"/oidc/authorize/resume?flow={flow_id}")
    assert "code=" not in (resumed.location or "")
    assert browser.client.get_cookie("varco_sso") is None
    response = token_request(
        browser.client,
        {"grant_type": "authorization_code", "code": flow_id, "redirect_uri": RP, "code_verifier": verifier},
        auth=("webapp", secret_rp),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
