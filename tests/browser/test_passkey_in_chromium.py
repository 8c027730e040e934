"""A passkey enrolled and used through Varco's own pages, in Chromium with a virtual authenticator."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from idp.app import create_app
from tests.support.live import LiveServer, free_port
from tests.support.mfa import set_login_count

pytestmark = [pytest.mark.browser, pytest.mark.mfa_policy]


@pytest.fixture
def localhost_app(settings):
    # WebAuthn needs a secure context and a domain as RP ID: http://localhost is both.
    port = free_port()
    app = create_app(settings.replace(server={"issuer": f"http://localhost:{port}"}))
    with LiveServer(app, port=port, host="localhost") as server:
        yield app, server
    app.extensions["varco"].db.dispose()


def virtual_authenticator(chromium):
    context = chromium.new_context(locale="en-GB")
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
    }
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return context, page


def password_login(page, url: str) -> None:
    page.goto(url + "/login?lang=en")
    page.get_by_label("Username, person code or e-mail").fill("mario.rossi")
    page.get_by_label("Password", exact=True).fill("Correct-Horse-9")
    page.get_by_role("button", name="Sign in").click()


def test_passkey_enrolment_and_login_in_a_real_browser(chromium, localhost_app):
    app, server = localhost_app
    from idp.accounts.service import NewAccount

    account = app.extensions["varco"].accounts.create(
        NewAccount("mario.rossi", "Mario", "Rossi", "mario.rossi@uni.example.it"), "Correct-Horse-9"
    )
    set_login_count(app, account.id, 1)
    context, page = virtual_authenticator(chromium)
    try:
        password_login(page, server.url)
        page.get_by_role("button", name="Enable 2FA with a passkey or security key").click()
        page.get_by_role("button", name="Create the passkey").click()
        expect(page.get_by_role("heading", name="Two-factor authentication is active")).to_be_visible()
        page.get_by_role("button", name="I have saved them, continue").click()
        expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        page.context.clear_cookies()
        password_login(page, server.url)
        page.get_by_role("button", name="Use a passkey or security key").click()
        expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    finally:
        context.close()
    factors = app.extensions["varco"].mfa.webauthn_credentials(account.id)
    assert len(factors) == 1
    assert factors[0].last_used_at is not None
