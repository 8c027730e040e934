"""The authorization code flow with PKCE through the Flask test client: the happy paths."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc.conftest import RP, get_code, pkce, query, token_request


def decode_id_token(client, value: str) -> dict:
    keys = KeySet.import_key_set(client.get("/oidc/jwks").get_json())
    return jwt.decode(value, keys, algorithms=["RS256", "ES256"]).claims


def test_discovery_lists_the_endpoints_and_only_s256(browser):
    data = browser.client.get("/.well-known/openid-configuration").get_json()
    assert data["issuer"] == "http://127.0.0.1:8080"
    assert data["token_endpoint"].endswith("/oidc/token")
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert data["authorization_response_iss_parameter_supported"] is True
    assert set(data["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}


def test_jwks_publishes_rsa_and_ec_public_keys_only(browser):
    keys = browser.client.get("/oidc/jwks").get_json()["keys"]
    assert {k["kty"] for k in keys} == {"RSA", "EC"}
    assert all("d" not in k for k in keys)


def test_jwks_requests_do_not_parse_the_private_keys_again(browser, monkeypatch):
    # Parsing (and validating) an RSA private key costs more than 100 ms of CPU: a JWKS request that
    # did it each time would let anyone stall a worker with a few requests a second.
    from idp.keys import SigningKey

    parsed = []
    jwk = SigningKey.jwk
    monkeypatch.setattr(SigningKey, "jwk", lambda key: parsed.append(key.kid) or jwk(key))
    answers = [browser.client.get("/oidc/jwks").get_json() for _ in range(5)]
    assert answers[0]["keys"] and all(answer == answers[0] for answer in answers)
    assert len(parsed) == len(set(parsed)) <= len(answers[0]["keys"])


def test_logged_in_person_gets_a_code_with_state_and_issuer(logged_in, confidential):
    _, challenge = pkce()
    params = get_code(logged_in, challenge)
    assert params["state"] == "st-1"
    assert params["iss"] == "http://127.0.0.1:8080"
    assert len(params["code"]) > 20


def test_code_is_exchanged_for_tokens_with_a_complete_id_token(logged_in, confidential):
    client, secret = confidential
    verifier, challenge = pkce()
    code = get_code(logged_in, challenge)["code"]
    response = token_request(
        logged_in.client,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": RP, "code_verifier": verifier},
        auth=("webapp", secret),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    claims = decode_id_token(logged_in.client, body["id_token"])
    assert claims["aud"] == "webapp" and claims["nonce"] == "n-1"
    assert claims["iss"] == "http://127.0.0.1:8080"
    assert claims["acr"] == "https://refeds.org/profile/sfa" and claims["amr"] == ["pwd"]
    assert claims["auth_time"] and claims["sid"] and claims["at_hash"]
    info = logged_in.client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.get_json()["sub"] == claims["sub"]
    assert info.get_json()["email"] == "mario.rossi@studenti.uni.example.it"


def test_person_without_session_is_sent_to_login_and_back(browser, person, confidential):
    _, challenge = pkce()
    from tests.oidc.conftest import authorize_url

    page = browser.get(authorize_url("webapp", challenge))
    assert page.status == 303 and page.location.startswith("/login?flow=")
    form = browser.follow(page)
    done = browser.submit(form, username="mario.rossi", password="Correct-Horse-9")
    assert done.status == 303 and done.location.startswith("/oidc/authorize/resume?flow=")
    back = browser.get(done.location)
    assert back.status == 302 and back.location.startswith(RP)
    assert "code" in query(back.location)
