"""Every page a person meets on the way in, audited in Chromium by axe-core (the accessibility rules
engine of tests/browser/node: WCAG 2.x A and AA, and its best practices), in Italian and English.

A page passes when axe finds no violation at all. The audit script is injected into the page, so
the browser context lets it past the Content-Security-Policy (Varco's own pages never need that)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from idp.oidc.clients import NewClient
from tests.oidc.conftest import authorize_url, pkce

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite+sql"], indirect=True)]

AXE = Path(__file__).parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "Correct-Horse-9"
LOCALES = {"it": "it-IT", "en": "en-GB"}


def violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
            v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(" ")).join(", ")}`)"""
    )
    return [f"{page.url}: {item}" for item in found]


@pytest.fixture(params=sorted(LOCALES))
def audited(request, chromium):  # type: ignore[no-untyped-def]
    context = chromium.new_context(locale=LOCALES[request.param], bypass_csp=True)
    page = context.new_page()
    found: list[str] = []
    yield page, lambda: found.extend(violations(page)), found
    context.close()


def sign_in(page, live, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto(live.url + "/login")
    page.locator("#username").fill("mario.rossi")
    page.locator("#password").fill(password)
    page.locator("#password").press("Enter")


def test_login_pages(live, app, audited, make_account):
    page, audit, found = audited
    make_account()
    page.goto(live.url + "/login")
    audit()
    page.locator("#password").press("Enter")  # both fields empty
    expect(page.get_by_role("alert").first).to_be_visible()
    audit()
    sign_in(page, live, "not-the-password")
    expect(page.get_by_role("alert").first).to_be_visible()
    audit()
    temporary = app.extensions["varco"].accounts.issue_temporary_password("mario.rossi", actor="helpdesk")
    sign_in(page, live, temporary)
    expect(page.locator("#new_password")).to_be_visible()
    audit()
    page.locator("#new_password").fill("Spring-comes-early-2027")
    page.locator("#confirm_password").fill("Not-the-same-phrase-2027")
    page.locator("#confirm_password").press("Enter")
    expect(page.get_by_role("alert").first).to_be_visible()
    audit()
    page.goto(live.url + "/no/such/page")
    audit()
    assert found == []


def test_account_pages_and_consent(live, app, audited, make_account):
    page, audit, found = audited
    make_account()
    app.extensions["varco_oidc"].clients.add(
        NewClient(client_id="lms", name="Moodle", redirect_uris=("https://rp.example.org/cb",), first_party=False)
    )
    sign_in(page, live)
    page.wait_for_url(live.url + "/account")
    for path in ("/account", "/account/security", "/account/apps", "/device", "/mfa/deactivate"):
        page.goto(live.url + path)
        audit()
    _, challenge = pkce()
    page.goto(live.url + authorize_url("lms", challenge))
    expect(page.locator("form button").first).to_be_visible()
    audit()
    page.goto(live.url + "/logout")
    audit()
    page.locator("form button").first.click()
    audit()
    assert found == []


@pytest.mark.mfa_policy
def test_two_factor_pages(live, audited, make_account):
    page, audit, found = audited
    make_account()
    sign_in(page, live)  # first login: the notice that 2FA comes next time
    audit()
    page.context.clear_cookies()
    sign_in(page, live)  # second login: a factor must be chosen
    expect(page.locator("button[value=totp]")).to_be_visible()
    audit()
    for factor in ("totp", "sms"):
        page.locator(f"button[value={factor}]").click()
        expect(page.locator("button[value=back]")).to_be_visible()
        audit()
        page.locator("button[value=back]").click()
    page.locator("button[value=upstream]").click()  # SPID, CIE or eIDAS as the second factor
    expect(page.locator("button[value=cancel]")).to_be_visible()
    audit()
    assert found == []
