"""`make demo`'s relying service signs a person in through Varco over OpenID Connect, in Chromium.

The login form ends in a redirect to the service's own origin: this also proves the pages' Content
Security Policy lets that redirect through.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from idp.app import create_app
from idp.demo import prepare_demo
from idp.demo_services import create_demo_services, register_demo_clients
from tests.support.live import LiveServer, free_port

pytestmark = pytest.mark.browser


def test_demo_learning_platform_signs_in_through_varco(tmp_path, chromium):
    port, services_port = free_port(), free_port()
    settings, _ = prepare_demo(tmp_path / "demo", f"http://127.0.0.1:{port}")
    app = create_app(settings)
    services_url = f"http://localhost:{services_port}"
    client_secrets = register_demo_clients(app.extensions["varco_oidc"].clients, services_url)
    services = create_demo_services(settings.server.issuer, services_url, client_secrets)
    context = chromium.new_context(locale="en-GB")
    page = context.new_page()
    try:
        with LiveServer(app, port=port), LiveServer(services, port=services_port, host="localhost"):
            page.goto(services_url + "/")
            page.get_by_role("link", name="Sign in with Varco").first.click()
            page.get_by_label("Username, person code or e-mail").fill("john.smith")
            page.get_by_label("Password", exact=True).fill("Guest-Demo-2026")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("button", name="Not now").click()
            expect(page.locator("pre").first).to_contain_text("preferred_username: john.smith")
            assert page.url == services_url + "/"
    finally:
        context.close()
        app.extensions["varco"].db.dispose()
