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
