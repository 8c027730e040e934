"""The client_credentials fast path (idp/oidc/fastpath.py) against the framework path, request by
request: it answers only requests the framework path grants, its tokens are the same tokens, and
everything else reaches the framework path with its body intact."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import quote

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from idp.app import SECURITY_HEADERS
from idp.oidc.fastpath import ClientCredentialsFastPath, basic_credentials, form_parameters

SECRET = "Odd secret: 100% / not+plain & long enough ~"
FORM = "application/x-www-form-urlencoded"


def basic(client_id: str, secret: str, quoted: bool = True) -> str:
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}" if quoted else f"{client_id}:{secret}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.fixture
def clients(register):
    cc = {"grant_types": ("client_credentials",), "redirect_uris": (), "scopes": ("profile", "email", "openid")}
    secrets = {
        "svc": register("svc", secret=SECRET, **cc)[1],
        "jwtsvc": register("jwtsvc", access_token_format="jwt", **cc)[1],
        "postsvc": register("postsvc", token_endpoint_auth_method="client_secret_post", **cc)[1],
        "webapp": register("webapp", grant_types=("authorization_code",))[1],
    }
    return {name: secret or SECRET for name, secret in secrets.items()}


FAST, FRAMEWORK, REFUSED = "answered by the fast path", "granted by the framework path only", "refused"


def requests_to_compare(clients: dict[str, str]) -> list[dict]:
    """Token requests, each with who should answer it: the fast path grants; the framework path
    grants what the fast path leaves alone; the rest is refused by the framework path."""
    good = basic("svc", SECRET)
    return [
        {"expect": FAST, "body": "grant_type=client_credentials", "auth": good},
        {"expect": FAST, "body": "grant_type=client_credentials&scope=profile", "auth": good},
        {"expect": FAST, "body": "scope=profile+email&grant_type=client_credentials", "auth": good},
        {"expect": FAST, "body": "grant_type=client_credentials&scope=email%20profile", "auth": good},
        {"expect": FAST, "body": "grant_type=client_credentials&scope=profile",
         "auth": basic("jwtsvc", clients["jwtsvc"])},
        {"expect": FRAMEWORK, "body": "grant_type=client_credentials", "auth": good, "type": FORM + "; charset=UTF-8"},
        {"expect": FRAMEWORK, "body": "grant_type=client_credentials",
         "auth": basic("svc", SECRET, quoted=False).replace("Basic", "basic")},
        {"expect": FRAMEWORK,
         "body": f"grant_type=client_credentials&client_id=postsvc&client_secret={quote(clients['postsvc'])}"},
        {"expect": FRAMEWORK, "body": "grant_type=client_credentials&scope=profile%20%20email", "auth": good},
        {"expect": FRAMEWORK, "body": "grant_type=client_credentials&scope=", "auth": good},
        {"expect": FRAMEWORK, "body": "grant_type=client_credentials&client_id=svc", "auth": good},
        {"expect": FRAMEWORK, "body": "grant_type=client_credentials&extra=1", "auth": good},
        {"expect": FRAMEWORK, "body": "grant_type=client_credentials&", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": basic("svc", SECRET[:-1])},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": basic("svc", SECRET + "x")},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": basic("nobody", SECRET)},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": basic("postsvc", clients["postsvc"])},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": basic("webapp", clients["webapp"])},
        {"expect": REFUSED, "body": "grant_type=client_credentials&scope=openid", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials&scope=profile+openid", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials&scope=eduperson", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials&scope=unknown", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials&scope=profile%00", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials&grant_type=client_credentials", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials&scope=profile&scope=email", "auth": good},
        {"expect": REFUSED, "body": "grant_type=password&username=a&password=b", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client%5Fcredentials%FF", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": good, "query": "scope=profile"},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": good, "type": "application/json"},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": good, "method": "PUT"},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": "Basic " + "%%%"},
        {"expect": REFUSED, "body": "grant_type=client_credentials",
         "auth": "Basic " + base64.b64encode(b"svc").decode()},
        {"expect": REFUSED, "body": "grant_type=client_credentials",
         "auth": "Basic " + base64.b64encode(b"sv\xffc:x").decode()},
        {"expect": REFUSED, "body": "grant_type=client_credentials", "auth": "Bearer " + "x" * 40},
        {"expect": REFUSED, "body": "grant_type=client_credentials&scope=" + "profile+" * 300 + "email", "auth": good},
        {"expect": REFUSED, "body": "grant_type=client_credentials"},
    ]


def send(wsgi, case: dict) -> Response:
    body = case["body"].encode()
    headers = {"Authorization": case["auth"]} if "auth" in case else {}
    return Client(wsgi).open(
        "/oidc/token",
        method=case.get("method", "POST"),
        query_string=case.get("query"),
        data=body,
        content_type=case.get("type", FORM),
        headers=headers,
    )


def token_record(op, value: str) -> dict:
    token = op.tokens.find_access_token(value)
    assert token is not None, value
    return {"client": token.client_id, "scope": token.scope, "account": token.account_id, "format": value[:4]}


def test_the_fast_path_grants_exactly_what_the_framework_path_grants(app, op, clients):
    fast = app.extensions["varco_login_fastpath"].app  # the login fast path is the outer layer
    assert isinstance(fast, ClientCredentialsFastPath)
    framework = fast.app
    for case in requests_to_compare(clients):
        ours, theirs = send(fast, case), send(framework, case)
        assert (theirs.status_code == 200) == (case["expect"] != REFUSED), case
        assert ours.status_code == theirs.status_code, case
        assert set(ours.headers.keys()) - {"Content-Length"} == set(theirs.headers.keys()) - {"Content-Length"}, case
        for name in ("Content-Type", "Cache-Control", "Pragma", "Access-Control-Allow-Origin"):
            assert ours.headers.get(name) == theirs.headers.get(name), (case, name)
        assert theirs.mimetype == "application/json", (case, theirs.get_data()[:300])
        mine, other = json.loads(ours.get_data()), json.loads(theirs.get_data())
        if theirs.status_code == 200:
            assert token_record(op, mine.pop("access_token")) == token_record(op, other.pop("access_token"))
        assert mine == other, case


def test_it_answers_the_plain_grant_itself_and_passes_every_other_request_on_intact(app, op, clients):
    seen: list[tuple[str, bytes]] = []

    @Request.application
    def framework(request: Request) -> Response:
        seen.append((request.method, request.get_data()))
        return Response("framework", status=418)

    fast = ClientCredentialsFastPath(framework, op, "/oidc/token", SECURITY_HEADERS)
    for case in requests_to_compare(clients):
        seen.clear()
        send(framework, case)
        directly = list(seen)
        seen.clear()
        response = send(fast, case)
        if case["expect"] == FAST:
            assert response.status_code == 200 and seen == [], case
        else:
            # What the framework reads is what it would have read without the fast path in front.
            assert response.status_code == 418 and seen == directly, case

    # A body whose length is the server's business (chunked) is left to the framework path.
    seen.clear()
    chunked = dict(requests_to_compare(clients)[0], expect=FRAMEWORK)
    response = Client(fast).post("/oidc/token", data=chunked["body"].encode(), content_type=FORM,
                                 headers={"Authorization": chunked["auth"], "Transfer-Encoding": "chunked"})
    assert response.status_code == 418 and len(seen) == 1

    # Other paths and methods are not even looked at.
    for path in ("/oidc/userinfo", "/login", "/oidc/token/"):
        seen.clear()
        assert Client(fast).post(path, data=b"grant_type=client_credentials", content_type=FORM).status_code == 418


def test_a_tampered_or_foreign_fast_path_token_is_worthless(app, op, clients):
    response = send(app.wsgi_app, {"body": "grant_type=client_credentials&scope=profile", "auth": basic("svc", SECRET)})
    value = response.get_json()["access_token"]
    assert op.tokens.find_access_token(value) is not None
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    assert op.tokens.find_access_token(flipped) is None
    introspected = Client(app.wsgi_app).post(
        "/oidc/introspect", data={"token": value}, headers={"Authorization": basic("svc", SECRET)}
    )
    assert introspected.get_json()["active"] is True and introspected.get_json()["scope"] == "profile"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a=1&b=x+y%21", {"a": "1", "b": "x y!"}),
        (b"a=1&a=2", None),
        (b"a", None),
        (b"=1", None),
        (b"a=", None),
        (b"a=%ZZ", {"a": "%ZZ"}),
        (b"a=%C3%A8", None),
        (b"a=%FF", None),
        (b"a=%0A", None),
        ("a=è".encode(), None),
    ],
)
def test_form_parameters_are_read_strictly(body, expected):
    assert form_parameters(body) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("svc", "s:e c%"), ("svc", "s:e c%")),
        (basic("svc", "plain", quoted=False), ("svc", "plain")),
        ("basic " + base64.b64encode(b"svc:x").decode(), None),
        ("Basic " + base64.b64encode(b"svc:").decode(), None),
        ("Basic " + base64.b64encode(b":x").decode(), None),
        ("Basic " + base64.b64encode(b"svc:%FF").decode(), None),
        ("Basic " + base64.b64encode(b"svc:a\x00b").decode(), None),
        ("Basic c3Zj OngK", None),
        (None, None),
    ],
)
def test_basic_credentials_are_read_strictly(header, expected):
    assert basic_credentials(header) == expected


@pytest.mark.parametrize("length", ["", "-1", "+29", "2 9", "\u0663", "1025", "99999999999999999999"])
def test_a_body_length_it_cannot_trust_is_left_unread(op, clients, length):
    body = io.BytesIO(b"grant_type=client_credentials")
    calls = []

    def framework(environ, start_response):  # type: ignore[no-untyped-def]
        calls.append(environ["wsgi.input"])
        start_response("418 I'm a teapot", [])
        return [b""]

    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/oidc/token", "QUERY_STRING": "", "CONTENT_TYPE": FORM,
        "CONTENT_LENGTH": length, "wsgi.input": body, "HTTP_AUTHORIZATION": basic("svc", SECRET),
    }
    ClientCredentialsFastPath(framework, op, "/oidc/token", SECURITY_HEADERS)(environ, lambda *a: None)
    assert calls == [body] and body.tell() == 0
