"""OIDC Core 12.2: the refresh of an `openid` grant carries a new ID token for the same login."""

from __future__ import annotations

import base64
import hashlib

from tests.oidc.conftest import token_request
from tests.oidc.test_endpoints import id_claims, tokens_for


def refresh(browser, secret, refresh_token, **extra):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    response = token_request(browser.client, form, auth=("webapp", secret))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_refresh_returns_an_id_token_for_the_original_login(logged_in, confidential):
    _, secret = confidential
    first = tokens_for(logged_in, secret)
    _, original = id_claims(logged_in, first["id_token"])
    renewed = refresh(logged_in, secret, first["refresh_token"])
    header, claims = id_claims(logged_in, renewed["id_token"])
    for name in ("iss", "sub", "aud", "sid", "auth_time", "acr", "amr"):
        assert claims[name] == original[name], name
    assert "nonce" in original and "nonce" not in claims
    assert claims["iat"] >= original["iat"] and claims["exp"] > claims["iat"]
    digest = hashlib.sha256(renewed["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert header["kid"]


def test_a_refresh_narrowed_to_non_openid_scopes_returns_no_id_token(logged_in, confidential):
    _, secret = confidential
    first = tokens_for(logged_in, secret)
    renewed = refresh(logged_in, secret, first["refresh_token"], scope="profile offline_access")
    assert "id_token" not in renewed and renewed["access_token"]
