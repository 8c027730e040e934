"""The login journey as a person meets it, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_student_logs_in_with_the_serial_number_and_signs_out(live, page, make_account):
    make_account(student_id="20012345")
    page.goto(live.url + "/login")
    assert page.locator("html").get_attribute("lang") == "it"
    # Fields are reachable by their visible labels (accessibility).
    page.get_by_label("Nome utente, codice persona o e-mail").fill("20012345")
    page.get_by_label("Password", exact=True).fill("Correct-Horse-9")
    page.get_by_role("button", name="Accedi").click()
    page.wait_for_url(live.url + "/account")
    expect(page.get_by_role("heading", name="Il tuo account")).to_be_visible()
    page.get_by_role("link", name="Esci").click()
    page.get_by_role("button", name="Esci").click()
    expect(page.get_by_role("heading", name="Sei uscito")).to_be_visible()
    page.goto(live.url + "/account")
    expect(page).to_have_url(re.compile(r".*/login.*"))


def test_wrong_password_is_announced_and_the_username_kept(live, page, make_account):
    make_account()
    page.goto(live.url + "/login?lang=en")
    page.get_by_label("Username, person code or e-mail").fill("mario.rossi")
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Incorrect username or password.")
    expect(page.get_by_label("Username, person code or e-mail")).to_have_value("mario.rossi")
    # The error summary takes focus so screen readers announce it. The browser applies
    # autofocus when it next renders the page, so the check waits for it.
    expect(page.locator("#error-summary")).to_be_focused()


def test_temporary_password_journey(live, page, app, make_account):
    make_account()
    temporary = app.extensions["varco"].accounts.issue_temporary_password("mario.rossi", actor="helpdesk")
    page.goto(live.url + "/login?lang=en")
    page.get_by_label("Username, person code or e-mail").fill("mario.rossi")
    page.get_by_label("Password", exact=True).fill(temporary)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill("Spring-comes-early-2027")
    page.get_by_label("Repeat the new password").fill("Spring-comes-early-2027")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(live.url + "/account")


def test_login_page_loads_nothing_from_other_origins(live, page):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live.url + "/login")
    page.wait_for_load_state("networkidle")
    assert requested
    assert all(url.startswith(live.url) for url in requested), requested


def test_language_switch_in_the_page(live, page):
    page.goto(live.url + "/login")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"
