"""A sweep over every route of the app with hostile requests: none may end in a 5xx other than 503.

Routes added later (OIDC, SAML, federation) are covered automatically through the URL map.
"""

from __future__ import annotations

import re

PAYLOADS = [
    ("empty form", {"data": {}}),
    (
        "junk form",
        {
            "data": {
                "username": "x" * 5000,
                "password": "\x00\x01",
                "otp": "'; DROP TABLE x;--",
                "csrf_token": "a.b",
                "flow": "../../etc/passwd",
                "reason": "<script>",
            }
        },
    ),
    ("json body", {"json": {"username": ["a"], "password": {"$ne": 1}}}),
    (
        "xml body",
        {
            "data": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            "content_type": "application/xml",
        },
    ),
    ("binary body", {"data": bytes(range(256)) * 4, "content_type": "application/octet-stream"}),
    ("bad utf-8 form", {"data": b"username=%FF%FE&password=\xff", "content_type": "application/x-www-form-urlencoded"}),
    ("duplicated params", {"query_string": "flow=a&flow=b&lang=en&lang=it&sp=x&sp=y"}),
]

# Every parameter name a route reads (forms, OAuth, SAML). PostgreSQL refuses text with a NUL byte
# outright, so a NUL that reached a query would be a server error there.
PARAMETERS = (
    "username", "password", "new_password", "confirm_password", "otp", "phone", "codes", "action", "decision",
    "broker", "fiscal_code", "email", "personal_email", "student_id", "given_name", "family_name", "citizenship",
    "lang", "next", "reason", "mode", "factor", "pending", "flow", "sp", "req", "t", "user_code",
    "webauthn_response", "options_json", "client_id", "client_secret", "client_assertion", "client_assertion_type",
    "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "prompt", "max_age", "acr_values",
    "login_hint", "id_token_hint", "ui_locales", "claims", "request", "request_uri", "code", "code_verifier",
    "code_challenge", "code_challenge_method", "grant_type", "refresh_token", "device_code", "token",
    "token_type_hint", "post_logout_redirect_uri", "logout_token", "SAMLRequest", "SAMLResponse", "RelayState",
    "SigAlg", "Signature", "SAMLEncoding", "entityID", "csrf_token",
)
for value in ("nul\x00byte", "\x1b[2Jescape", "\u202ebidi"):
    PAYLOADS.append((f"{value!r} in every parameter (query)", {"query_string": dict.fromkeys(PARAMETERS, value)}))
    PAYLOADS.append((f"{value!r} in every parameter (form)", {"data": dict.fromkeys(PARAMETERS, value)}))


def concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?[^<>]+>", "x", rule)


def test_no_route_answers_a_server_error_to_hostile_requests(app, make_account):
    make_account()
    client = app.test_client()
    routes = [(concrete(r.rule), sorted(r.methods - {"HEAD", "OPTIONS"})) for r in app.url_map.iter_rules()]
    assert len(routes) > 5
    failures = []
    for path, methods in routes:
        for method in methods:
            for name, kwargs in PAYLOADS:
                response = client.open(path, method=method, **kwargs)
                if response.status_code >= 500 and response.status_code != 503:
                    failures.append(f"{method} {path} [{name}] -> {response.status_code}")
    assert failures == []


# Values from outside that are not ASCII where Varco's own are: compared with its MACs, they must
# simply not match (hmac.compare_digest raises TypeError for a str that is not ASCII).
NOT_ASCII = "a.\u00e9"
FLOW_ID_NOT_ASCII = "A" * 45 + "\u00e9"  # a fresh flow id's length, a tag that is not ASCII
HOSTILE_COOKIES = ("varco_browser", "varco_sso", "varco_lang")


def test_no_route_answers_a_server_error_to_values_that_are_not_ascii(app, make_account):
    make_account()
    client = app.test_client()
    routes = [(concrete(r.rule), sorted(r.methods - {"HEAD", "OPTIONS"})) for r in app.url_map.iter_rules()]
    failures = []
    for cookie_value in (None, NOT_ASCII, "\u00e9", "x" * 60 + ".\u00e9\u00e9"):
        client = app.test_client()
        client.get("/login")  # a genuine browser cookie first, then (maybe) one that is not
        for name in HOSTILE_COOKIES if cookie_value is not None else ():
            client.set_cookie(name, cookie_value)
        for path, methods in routes:
            for method in methods:
                form = {"csrf_token": "a.9999999999.\u00e9", "flow": FLOW_ID_NOT_ASCII, "state": NOT_ASCII}
                response = client.open(path, method=method, data=form, query_string={"flow": FLOW_ID_NOT_ASCII})
                if response.status_code >= 500 and response.status_code != 503:
                    failures.append(f"{method} {path} [cookie {cookie_value!r}] -> {response.status_code}")
    assert failures == []


def test_an_invalid_host_header_is_a_bad_request_on_every_route(app):
    # No URL can be built for a host that is not a valid name: the error page must not need one.
    client = app.test_client()
    routes = [(concrete(r.rule), sorted(r.methods - {"HEAD", "OPTIONS"})) for r in app.url_map.iter_rules()]
    answers = {}
    for host in ("x..y", ".", "a" * 64 + ".example"):
        for path, methods in routes:
            for method in methods:
                response = client.open(path, method=method, headers={"Host": host})
                answers[f"{method} {path} {host}"] = response.status_code
    # GET /login is answered beneath the framework (idp/flow/fastpath.py), from a page whose URLs
    # are relative: it needs no Host, and serves the login page.
    served = {k: v for k, v in answers.items() if k.startswith("GET /login ")}
    assert set(served.values()) == {200}
    assert {k: v for k, v in answers.items() if v != 400} == served
