"""Token lifetimes come from the [oidc] settings."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.oidc.models import OidcRefreshToken
from tests.oidc.conftest import token_request
from tests.oidc.test_endpoints import DEVICE, basic, tokens_for

LIFETIMES = {
    "access_token_seconds": 300,
    "id_token_seconds": 900,
    "client_credentials_token_seconds": 120,
    "refresh_token_days": 7,
    "device_code_seconds": 240,
}


@pytest.fixture
def settings(settings):
    return settings.replace(oidc=LIFETIMES)


def test_code_flow_tokens_live_as_configured(logged_in, confidential, op):
    _, secret = confidential
    body = tokens_for(logged_in, secret)
    assert body["expires_in"] == 300
    keys = KeySet.import_key_set(logged_in.client.get("/oidc/jwks").get_json())
    claims = jwt.decode(body["id_token"], keys, algorithms=["RS256", "ES256"]).claims
    assert claims["exp"] - claims["iat"] == 900
    with op.services.db.session() as session:
        stored = session.execute(select(OidcRefreshToken)).scalars().one()
    expires = stored.expires_at.replace(tzinfo=stored.expires_at.tzinfo or dt.UTC)
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)


def test_client_credentials_tokens_live_as_configured(browser, register):
    _, secret = register("svc", grant_types=("client_credentials",), scopes=("profile",), redirect_uris=())
    response = token_request(browser.client, {"grant_type": "client_credentials"}, auth=("svc", secret))
    assert response.get_json()["expires_in"] == 120
    introspected = browser.client.post(
        "/oidc/introspect", data={"token": response.get_json()["access_token"]}, headers=basic("svc", secret)
    ).get_json()
    assert introspected["active"] is True
    assert 110 <= introspected["exp"] - time.time() <= 120


def test_device_codes_live_as_configured(logged_in, register):
    _, secret = register("kiosk", grant_types=(DEVICE,), scopes=("openid",), redirect_uris=())
    grant = logged_in.client.post(
        "/oidc/device_authorization", data={"scope": "openid"}, headers=basic("kiosk", secret)
    ).get_json()
    assert grant["expires_in"] == 240
