"""Helpers for second-factor journeys: read the TOTP secret off the enrolment page, make codes."""

from __future__ import annotations

import re
import time

import pyotp

from tests.support.pages import Browser, Page

H1 = re.compile(r"<h1>(.*?)</h1>", re.S)


def heading(page: Page) -> str:
    found = H1.search(page.text)
    return found.group(1).strip() if found else ""


def code(secret: str, steps_ahead: int = 0) -> str:
    """The code of the current time step (or the next one: the ±1 window accepts it)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrol_totp(browser: Browser, page: Page) -> tuple[str, Page]:
    """From the enrolment choice page: pick the app, read the key, confirm with a first code."""
    page = browser.follow(browser.submit(page, action="totp"))
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    recovery = browser.follow(browser.submit(page, action="confirm", otp=code(secret)))
    assert 'id="recovery-codes"' in recovery.text, heading(recovery)
    return secret, recovery


def recovery_codes(page: Page) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", page.text)


def new_browser(app) -> Browser:  # type: ignore[no-untyped-def]
    return Browser(app.test_client())


def login(app, username: str = "mario.rossi", password: str = "Correct-Horse-9"):  # type: ignore[no-untyped-def]
    browser = new_browser(app)
    return browser, browser.follow(browser.login(username, password))


def set_login_count(app, account_id: str, count: int) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from idp.store.models import Account

    with app.extensions["varco"].db.session() as session:
        session.execute(update(Account).where(Account.id == account_id).values(login_count=count))


def enrolled(app, make_account, **fields):  # type: ignore[no-untyped-def]
    """A user past the first login who has enrolled the app; returns (account, secret)."""
    account = make_account(**fields)
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    if "SPID" in heading(page):
        page = browser.follow(browser.submit(page, reason="No SPID yet"))
    secret, recovery = enrol_totp(browser, page)
    assert browser.submit(recovery, action="continue").location == "/account"
    return account, secret
