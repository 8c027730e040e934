"""Two independent relying-party libraries against a live Varco on a real port: Authlib's client
and node's openid-client (which validates strictly). Both must accept every response."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken, IDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oidc.clients import NewClient
from tests.oidc.conftest import PASSWORD, HttpBrowser, query

NODE_DIR = Path(__file__).with_name("node")
CALLBACK = "http://127.0.0.1:9/cb"  # never contacted: the test reads the redirect itself
BYE = "http://127.0.0.1:9/bye"


@pytest.fixture(scope="session")
def node_rp() -> Path:
    # scripts/system-deps.sh installs node and npm; without them this must fail, not pass quietly.
    assert shutil.which("npm") is not None, "node and npm are needed for the openid-client relying party"
    if not (NODE_DIR / "node_modules" / "openid-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True)
    return NODE_DIR / "rp.mjs"


def register_rp(live, client_id: str) -> str:
    _, secret = live.op.clients.add(
        NewClient(
            client_id=client_id,
            name="Learning platform",
            redirect_uris=(CALLBACK,),
            post_logout_redirect_uris=(BYE,),
            grant_types=(
                "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
                "client_credentials",
            ),
            first_party=True,
        )
    )
    return secret


def approve_device_code(browser: HttpBrowser, user_code: str) -> None:
    page = browser.get("/device")
    assert page.status == 200 and 'name="user_code"' in page.text
    confirm = browser.submit(page, user_code=user_code)
    assert confirm.status == 200 and "Learning platform" in confirm.text
    done = browser.submit(confirm, user_code=user_code, decision="approve")
    assert done.status == 200


def test_authlib_client_runs_code_flow_refresh_userinfo_logout_and_device_flow(live, make_account):
    make_account("mario.rossi", PASSWORD)
    secret = register_rp(live, "authlib-rp")
    meta = requests.get(live.url + "/.well-known/openid-configuration").json()
    rp = OAuth2Session("authlib-rp", secret, scope="openid profile email offline_access",
                       redirect_uri=CALLBACK, code_challenge_method="S256")
    from authlib.common.security import generate_token

    verifier = generate_token(64)
    url, state = rp.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce="n-42")
    browser = HttpBrowser(live.url)
    callback = browser.login_at(url, CALLBACK)
    assert query(callback)["iss"] == live.url  # RFC 9207
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"]).json())
    decoded = jwt.decode(token["id_token"], keys)
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"value": live.url}, "aud": {"value": "authlib-rp"}},
        params={"nonce": "n-42", "client_id": "authlib-rp", "access_token": token["access_token"]},
    )
    claims.validate()
    info = rp.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"] and info["preferred_username"] == "mario.rossi"
    refreshed = rp.refresh_token(meta["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    renewed = jwt.decode(refreshed["id_token"], keys)  # OIDC Core 12.2: same login, new token
    IDToken(
        renewed.claims, renewed.header, options={"iss": {"value": live.url}, "aud": {"value": "authlib-rp"}}
    ).validate()
    assert renewed.claims["sub"] == claims["sub"] and renewed.claims["auth_time"] == claims["auth_time"]
    out = browser.get(
        meta["end_session_endpoint"] + "?" + urlencode(
            {"id_token_hint": token["id_token"], "post_logout_redirect_uri": BYE, "state": "s"}
        )
    )
    assert out.status == 303 and out.location == BYE + "?state=s"
    browser.login_at("/login", "/account")
    device = OAuth2Session("authlib-rp", secret, scope="openid profile")
    grant = device.post(meta["device_authorization_endpoint"], data={"scope": "openid profile"},
                        auth=("authlib-rp", secret)).json()
    approve_device_code(browser, grant["user_code"])
    response = device.post(meta["token_endpoint"], auth=("authlib-rp", secret), data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": grant["device_code"]})
    assert response.status_code == 200 and response.json()["access_token"]
    # client_credentials: answered by the token endpoint's fast path (idp/oidc/fastpath.py).
    machine = OAuth2Session("authlib-rp", secret, scope="profile")
    issued = machine.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert issued["token_type"] == "Bearer" and issued["scope"] == "profile" and "refresh_token" not in issued
    seen = requests.post(meta["introspection_endpoint"], data={"token": issued["access_token"]},
                         auth=("authlib-rp", secret)).json()
    assert seen["active"] is True and seen["client_id"] == "authlib-rp" and "sub" in seen


def test_node_openid_client_accepts_every_response(live, make_account, node_rp):
    make_account("mario.rossi", PASSWORD)
    secret = register_rp(live, "node-rp")
    process = subprocess.Popen(
        ["node", str(node_rp), live.url, "node-rp", secret, CALLBACK, BYE],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    def hear() -> dict:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        message = json.loads(line)
        assert message["step"] != "error", message
        return message

    def say(data: dict) -> None:
        process.stdin.write(json.dumps(data) + "\n")
        process.stdin.flush()

    try:
        browser = HttpBrowser(live.url)
        authorize = hear()
        say({"callback": browser.login_at(authorize["url"], CALLBACK)})
        tokens = hear()
        assert tokens["claims"]["acr"] == "https://refeds.org/profile/sfa"
        assert tokens["userinfo"]["sub"] == tokens["claims"]["sub"]
        assert tokens["refreshed"] and tokens["rotated"]
        # openid-client validated the ID token of the refresh response (signature, iss, aud, exp).
        assert tokens["refreshedClaims"]["sub"] == tokens["claims"]["sub"]
        assert tokens["refreshedClaims"]["auth_time"] == tokens["claims"]["auth_time"]
        out = browser.get(tokens["logout"])
        assert out.status == 303 and out.location == BYE + "?state=bye"
        browser.login_at("/login", "/account")
        say({})
        device = hear()
        approve_device_code(browser, device["user_code"])
        say({})
        assert hear()["access"] is True
        # client_credentials: answered by the token endpoint's fast path (idp/oidc/fastpath.py).
        machine = hear()
        assert machine["access"] is True and machine["scope"] == "profile" and machine["refresh"] is None
        assert machine["expiresIn"] == live.app.extensions["varco"].settings.oidc.client_credentials_token_seconds
    finally:
        process.kill()
        process.wait()
