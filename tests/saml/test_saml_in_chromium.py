"""The HTTP-POST hop in a real Chromium: the page posts itself to the SP under Varco's CSP (script from
/static, form-action limited to the ACS), and without JavaScript the visible Continue button does it."""

from __future__ import annotations

import base64
import threading
import zlib
from urllib.parse import parse_qs, quote

import pytest
from playwright.sync_api import expect
from saml_testkit import authn_request_xml, sp_metadata_xml
from saml_web import register
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from idp.saml import constants as c
from tests.support.live import LiveServer

pytestmark = pytest.mark.browser

SP = "https://chromium-sp.uni.example/sp"


class FakeAcs:
    """An SP's AssertionConsumerService on a loopback port: records what the browser posts."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.logout_requests: list[str] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/acs"
        self.slo_url = f"http://127.0.0.1:{self.server.server_port}/slo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @Request.application
    def app(self, request: Request) -> Response:
        if request.path == "/slo":
            self.logout_requests.append(request.args.get("SAMLRequest", ""))
            return Response("<!doctype html><title>SP logout</title>", mimetype="text/html")
        if request.method == "POST":
            self.received.append({k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()})
        return Response("<!doctype html><title>SP</title><h1>Welcome at the SP</h1>", mimetype="text/html")

    def __enter__(self) -> FakeAcs:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(5)


def in_chromium(chromium, scenario, **context_options):
    """Run ``scenario(page)`` in a fresh context of the run's shared Chromium."""
    context = chromium.new_context(**context_options)
    try:
        return scenario(context.new_page())
    finally:
        context.close()


@pytest.fixture
def acs():
    with FakeAcs() as server:
        yield server


@pytest.fixture
def live(app, acs, sp_keys, make_account):
    make_account()
    slo = f'<md:SingleLogoutService Binding="{c.BINDING_HTTP_REDIRECT}" Location="{acs.slo_url}"/>'
    register(app, sp_metadata_xml(SP, sp_keys[1], acs=((0, acs.url),), sp_extra=slo))
    with LiveServer(app) as server:
        yield server


def sso_url(app, live) -> str:
    idp = app.extensions["varco_saml"].idp
    xml = authn_request_xml(SP, destination=idp.sso_redirect_url)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()
    return f"{live.url}/saml/sso/redirect?SAMLRequest={quote(encoded, safe='')}&RelayState=chromium"


def log_in(page) -> None:
    page.get_by_label("Username, person code or e-mail").fill("mario.rossi")
    page.get_by_label("Password", exact=True).fill("Correct-Horse-9")
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no-script"])
def test_response_reaches_the_acs_with_and_without_javascript(chromium, app, live, acs, javascript):
    violations: list[str] = []

    def scenario(page):
        page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        page.goto(sso_url(app, live))
        log_in(page)
        if not javascript:
            page.get_by_role("button", name="Continue").click()
        page.wait_for_url(acs.url)
        expect(page.get_by_role("heading", name="Welcome at the SP")).to_be_visible()

    in_chromium(chromium, scenario, locale="en-GB", java_script_enabled=javascript)

    (posted,) = acs.received
    assert posted["RelayState"] == "chromium"
    assert b"urn:oasis:names:tc:SAML:2.0:status:Success" in base64.b64decode(posted["SAMLResponse"])
    assert violations == []


def test_signing_out_at_varco_sends_the_sp_a_logout_request_from_a_hidden_frame(chromium, app, live, acs):
    def scenario(page):
        page.goto(sso_url(app, live))
        log_in(page)
        page.wait_for_url(acs.url)
        page.goto(live.url + "/logout")
        page.get_by_role("button", name="Sign out").click()
        # The click submits a form: wait for the page it leads to, not the one still on screen.
        expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
        for _ in range(50):
            if acs.logout_requests:
                break
            page.wait_for_timeout(100)

    in_chromium(chromium, scenario, locale="en-GB")

    (request,) = acs.logout_requests
    assert b"LogoutRequest" in zlib.decompress(base64.b64decode(request), -15)
