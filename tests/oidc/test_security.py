"""Attacks and misuse, each refused with the exact error the specs require."""

from __future__ import annotations

import base64
import time
import uuid
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.oidc.conftest import RP, authorize_url, get_code, pkce, query, token_request


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://rp.example.org/cb/extra",  # suffix
        "https://rp.example.org/c",  # prefix
        "https://rp.example.org/cb/../evil",  # path traversal
        "https://rp.example.org@evil.example/cb",  # userinfo@host
        "https://rp.example.org/cb#frag",  # fragment
        "https://rp.example.org:8443/cb",  # different port
        "http://rp.example.org/cb",  # http instead of https
        "https://RP.example.org/cb",  # case change
        "https://rp.example.org/cb?x=1",  # extra query
    ],
)
def test_redirect_uri_variants_are_refused_without_redirecting(logged_in, confidential, redirect_uri):
    _, challenge = pkce()
    page = logged_in.get(authorize_url("webapp", challenge, redirect_uri=redirect_uri))
    assert page.status == 400 and page.location is None
    assert "invalid_request" in page.text


def test_unknown_client_id_is_refused_without_redirecting(logged_in, confidential):
    _, challenge = pkce()
    page = logged_in.get(authorize_url("nobody", challenge))
    assert page.status == 400 and page.location is None
    assert "invalid_client" in page.text


def test_a_client_stored_before_a_check_it_fails_is_not_served_until_registered_again(logged_in, register, op):
    """A registration stored by an earlier Varco, before plain-http redirect URIs to a remote host
    were refused, must not keep sending codes there."""
    from idp.oidc.models import OidcClientRecord

    _, secret = register("legacy")
    with op.clients.db.session() as session:
        session.get(OidcClientRecord, "legacy").redirect_uris = ["http://rp.example.org/cb"]
    op.clients._cache.clear()
    stored = op.clients.stored("legacy")
    assert stored.problem == "redirect_uri: 'http://rp.example.org/cb' must be https (or http on localhost)"
    assert op.clients.get("legacy") is None
    _, challenge = pkce()
    page = logged_in.get(authorize_url("legacy", challenge, redirect_uri="http://rp.example.org/cb"))
    assert page.status == 400 and page.location is None and "invalid_client" in page.text
    response = token_request(logged_in.client, {"grant_type": "client_credentials"}, auth=("legacy", secret))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"

    # Registered again with a URI of today's rules, it is served; its secret is kept.
    from idp.oidc.clients import NewClient

    client, generated = op.clients.add(
        NewClient("legacy", (RP,), grant_types=("authorization_code", "client_credentials"), first_party=True),
        replace=True,
    )
    assert generated is None and client.problem is None and client.check_client_secret(secret)
    assert get_code(logged_in, challenge, client_id="legacy")["state"] == "st-1"


def test_missing_pkce_is_refused_with_invalid_request_to_the_client(logged_in, confidential):
    page = logged_in.get(authorize_url("webapp", None))
    params = query(page.location)
    assert page.status == 302 and params["error"] == "invalid_request"
    assert "code_challenge" in params["error_description"] and params["state"] == "st-1"


def test_plain_pkce_is_refused(logged_in, confidential):
    verifier, _ = pkce()
    page = logged_in.get(authorize_url("webapp", None, code_challenge=verifier, code_challenge_method="plain"))
    params = query(page.location)
    assert params["error"] == "invalid_request" and "S256" in params["error_description"]


def test_prompt_none_without_session_returns_login_required_to_the_client(browser, person, confidential):
    _, challenge = pkce()
    page = browser.get(authorize_url("webapp", challenge, prompt="none"))
    params = query(page.location)
    assert page.status == 302 and page.location.startswith(RP)
    assert params["error"] == "login_required" and params["state"] == "st-1" and params["iss"]


def test_max_age_exceeded_sends_the_person_to_log_in_again(logged_in, confidential):
    _, challenge = pkce()
    time.sleep(1.1)
    page = logged_in.get(authorize_url("webapp", challenge, max_age="0"))
    assert page.status == 303 and page.location.startswith("/login?flow=")


def test_duplicated_parameters_are_refused(logged_in, confidential):
    _, challenge = pkce()
    page = logged_in.get(authorize_url("webapp", challenge) + "&scope=openid")
    assert query(page.location)["error"] == "invalid_request"
    response = token_request(logged_in.client, {"grant_type": ["authorization_code", "refresh_token"]})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_oversized_parameters_are_refused(logged_in, confidential):
    _, challenge = pkce()
    page = logged_in.get(authorize_url("webapp", challenge, state="x" * 5000))
    assert page.status in (302, 400)
    assert "invalid_request" in (page.location or page.text)


def test_token_endpoint_wants_a_form_body(logged_in, confidential):
    client = logged_in.client
    as_json = client.post("/oidc/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400 and as_json.get_json()["error"] == "invalid_request"
    as_text = client.post("/oidc/token", data="grant_type=x", content_type="text/plain")
    assert as_text.get_json()["error"] == "invalid_request"
    as_get = client.get("/oidc/token?grant_type=client_credentials")
    assert as_get.status_code == 400 and as_get.get_json()["error"] == "invalid_request"
    garbage = client.post("/oidc/token", data=b"\xff\xfe%%%=&&=", content_type="application/x-www-form-urlencoded")
    assert garbage.status_code in (400, 401) and "error" in garbage.get_json()


def test_unknown_grant_type_is_unsupported(logged_in, confidential):
    _, secret = confidential
    response = token_request(logged_in.client, {"grant_type": "password"}, auth=("webapp", secret))
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_wrong_client_secret_is_invalid_client(logged_in, confidential):
    response = token_request(logged_in.client, {"grant_type": "client_credentials"}, auth=("webapp", "x" * 43))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("endpoint", ["token", "introspection", "revocation"])
@pytest.mark.parametrize(
    "body",
    [
        {"client_secret": "x" * 43},  # a wrong secret beside the right one
        {"client_id": "svc", "client_secret": "SECRET"},  # the same secret, twice
        {"client_id": "other"},  # Basic names one client, the body another
        {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": "x"},
    ],
)
def test_one_client_authentication_method_per_request(logged_in, register, endpoint, body):
    # RFC 6749 2.3: a client MUST NOT use more than one authentication method in a request. Authlib
    # alone takes the first that succeeds (here the right Basic credentials) and ignores the rest.
    _, secret = register("svc", grant_types=("client_credentials",), scopes=("profile",), redirect_uris=())
    register("other")
    form = {"grant_type": "client_credentials"} if endpoint == "token" else {"token": "t" * 20}
    form.update({name: secret if value == "SECRET" else value for name, value in body.items()})
    discovery = logged_in.client.get("/.well-known/openid-configuration").get_json()
    url = urlsplit(discovery[f"{endpoint}_endpoint"]).path
    basic = {"Authorization": "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()}
    response = logged_in.client.post(url, data=form, headers=basic)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_request"
    # The Basic credentials alone are accepted.
    plain = {name: value for name, value in form.items() if name not in body}
    accepted = logged_in.client.post(url, data=plain, headers=basic)
    assert accepted.status_code == 200, accepted.get_json()


def test_invalid_client_says_so_plainly(logged_in, confidential):
    response = token_request(logged_in.client, {"grant_type": "client_credentials"}, auth=("nobody", "x" * 43))
    description = response.get_json()["error_description"]
    assert response.status_code == 401 and "[" not in description and "client authentication failed" in description


def exchange(client, code, verifier, secret):
    return token_request(
        client,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": RP, "code_verifier": verifier},
        auth=("webapp", secret),
    )


def test_wrong_code_verifier_is_invalid_grant(logged_in, confidential):
    _, secret = confidential
    _, challenge = pkce()
    code = get_code(logged_in, challenge)["code"]
    other, _ = pkce()
    response = exchange(logged_in.client, code, other, secret)
    assert response.get_json()["error"] == "invalid_grant"


def test_code_for_another_redirect_uri_is_invalid_grant(logged_in, register):
    _, secret = register("webapp", redirect_uris=(RP, "https://rp.example.org/other"))
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge)["code"]
    response = token_request(
        logged_in.client,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://rp.example.org/other",
         "code_verifier": verifier},
        auth=("webapp", secret),
    )
    assert response.get_json()["error"] == "invalid_grant"


def test_reused_authorization_code_revokes_issued_tokens(logged_in, confidential):
    _, secret = confidential
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge)["code"]
    first = exchange(logged_in.client, code, verifier, secret).get_json()
    second = exchange(logged_in.client, code, verifier, secret)
    assert second.status_code == 400 and second.get_json()["error"] == "invalid_grant"
    info = logged_in.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert info.status_code == 401 and info.get_json()["error"] == "invalid_token"
    refreshed = token_request(
        logged_in.client, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=("webapp", secret),
    )
    assert refreshed.get_json()["error"] == "invalid_grant"
    from sqlalchemy import select

    from idp.store.models import AuditEvent

    with logged_in.client.application.extensions["varco"].db.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "oidc.grant.revoked")).all()
        assert [e.detail["reason"] for e in events] == ["authorization code reused"]


def test_code_is_bound_to_the_client_it_was_issued_to(logged_in, confidential, register):
    _, other_secret = register("other")
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge)["code"]
    response = token_request(
        logged_in.client,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": RP, "code_verifier": verifier},
        auth=("other", other_secret),
    )
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_token_rotates_and_reuse_revokes_the_family(logged_in, confidential):
    _, secret = confidential
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge)["code"]
    first = exchange(logged_in.client, code, verifier, secret).get_json()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = token_request(logged_in.client, data, auth=("webapp", secret)).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    replay = token_request(logged_in.client, data, auth=("webapp", secret))
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    # The whole family is gone: the newest refresh token and the access tokens too.
    newest = token_request(
        logged_in.client, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=("webapp", secret),
    )
    assert newest.get_json()["error"] == "invalid_grant"
    info = logged_in.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert info.status_code == 401


# --- private_key_jwt -------------------------------------------------------------------------
@pytest.fixture
def jwt_client(register):
    key = ECKey.generate_key("P-256", {"kid": "k1"})
    register("service", grant_types=("client_credentials",), scopes=("openid", "profile"),
             token_endpoint_auth_method="private_key_jwt",
             jwks={"keys": [key.as_dict(private=False)]}, redirect_uris=())
    return key


def assertion(key, alg="ES256", **overrides):
    now = int(time.time())
    claims = {"iss": "service", "sub": "service", "aud": "http://127.0.0.1:8080/oidc/token",
              "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return jwt.encode({"alg": alg}, claims, key, algorithms=[alg])


def cc(client, value):
    return client.post("/oidc/token", data={
        "grant_type": "client_credentials", "client_assertion": value,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})


def test_private_key_jwt_client_gets_a_token(browser, jwt_client):
    response = cc(browser.client, assertion(jwt_client))
    assert response.status_code == 200, response.get_json()


def test_replayed_client_assertion_is_refused(browser, jwt_client):
    value = assertion(jwt_client)
    assert cc(browser.client, value).status_code == 200
    again = cc(browser.client, value)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_client"


def test_expired_client_assertion_is_refused(browser, jwt_client):
    old = int(time.time()) - 600
    response = cc(browser.client, assertion(jwt_client, iat=old, exp=old + 60))
    assert response.get_json()["error"] == "invalid_client"


def test_client_assertion_for_another_audience_is_refused(browser, jwt_client):
    response = cc(browser.client, assertion(jwt_client, aud="https://other.example/token"))
    assert response.get_json()["error"] == "invalid_client"


def test_unsigned_client_assertion_is_refused(browser, jwt_client):
    import base64
    import json

    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    value = b64({"alg": "none"}) + "." + b64({"iss": "service", "sub": "service", "jti": "x",
                                               "aud": "http://127.0.0.1:8080/oidc/token", "exp": now + 60}) + "."
    response = cc(browser.client, value)
    assert response.get_json()["error"] == "invalid_client"


def test_hs256_assertion_keyed_with_the_public_key_is_refused(browser, register):
    rsa = RSAKey.generate_key(2048, {"kid": "r1"})
    public = rsa.as_dict(private=False)
    register("service", grant_types=("client_credentials",), scopes=("profile",),
             token_endpoint_auth_method="private_key_jwt", jwks={"keys": [public]}, redirect_uris=())
    # The classic confusion attack: HMAC keyed with the published PEM (built by hand, as
    # well-behaved JOSE libraries refuse to do it).
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    signing_input = b64(json.dumps({"alg": "HS256"}).encode()) + "." + b64(json.dumps(
        {"iss": "service", "sub": "service", "aud": "http://127.0.0.1:8080/oidc/token", "exp": now + 60,
         "jti": uuid.uuid4().hex}).encode())
    mac = hmac.new(rsa.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    response = cc(browser.client, signing_input + "." + b64(mac))
    assert response.get_json()["error"] == "invalid_client"


def test_concurrent_uses_of_one_refresh_token_rotate_it_at_most_once(logged_in, confidential, app):
    import threading

    _, secret = confidential
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge)["code"]
    first = exchange(logged_in.client, code, verifier, secret).get_json()
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    statuses: list[int] = []

    def use() -> None:
        statuses.append(token_request(app.test_client(), data, auth=("webapp", secret)).status_code)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 1 and statuses.count(400) == 5
