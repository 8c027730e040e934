"""Helpdesk temporary passwords must be changed at the next login (seed 001)."""

from __future__ import annotations

import datetime as dt

from idp.sessions import SSO_COOKIE
from idp.store.models import Account


def test_temporary_password_forces_a_change_before_anything_else(app, browser, make_account):
    make_account()
    temporary = app.extensions["varco"].accounts.issue_temporary_password("mario.rossi", actor="helpdesk")
    page = browser.login("mario.rossi", temporary)
    assert page.status == 303
    assert page.location.startswith("/login?flow=")
    change = browser.get(page.location)
    assert "password temporanea" in change.text
    assert browser.client.get_cookie(SSO_COOKIE) is None
    done = browser.submit(change, new_password="A-brand-new-phrase", confirm_password="A-brand-new-phrase")
    assert done.status == 303
    assert done.location == "/account"
    assert browser.client.get_cookie(SSO_COOKIE) is not None
    account = app.extensions["varco"].accounts.find("mario.rossi")
    assert account.password_must_change is False
    from tests.support.pages import Browser

    assert Browser(app.test_client()).login("mario.rossi", "A-brand-new-phrase").location == "/account"
    assert Browser(app.test_client()).login("mario.rossi", temporary).status == 401


def test_new_password_rules_are_explained(app, browser, make_account):
    make_account()
    temporary = app.extensions["varco"].accounts.issue_temporary_password("mario.rossi", actor="helpdesk")
    change = browser.follow(browser.login("mario.rossi", temporary))
    cases = [
        ("short", "short", "troppo corta"),
        ("password123", "password123", "troppo comune"),
        ("mario.rossi-2026", "mario.rossi-2026", "non deve contenere"),
        ("A-brand-new-phrase", "A-different-phrase", "non coincidono"),
        (temporary, temporary, "diversa da quella attuale"),
    ]
    for new, confirm, expected in cases:
        page = browser.submit(change, new_password=new, confirm_password=confirm)
        assert page.status == 400, expected
        assert expected in page.alerts
        change = page
    account = app.extensions["varco"].accounts.find("mario.rossi")
    assert account.password_must_change is True


def test_expired_password_must_be_changed(app, browser, make_account):
    account = make_account()
    svc = app.extensions["varco"]
    with svc.db.session() as session:
        stored = session.get(Account, account.id)
        stored.password_changed_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=366)
    page = browser.follow(browser.login("mario.rossi", "Correct-Horse-9"))
    assert "scaduta" in page.text
    assert browser.client.get_cookie(SSO_COOKIE) is None
    done = browser.submit(page, new_password="Another-long-phrase", confirm_password="Another-long-phrase")
    assert done.location == "/account"


def test_temporary_password_unlocks_a_throttled_account(app, browser, make_account):
    make_account()
    svc = app.extensions["varco"]
    for _ in range(svc.settings.login.failed_attempts_per_account):
        browser.login("mario.rossi", "wrong-password-1")
    temporary = svc.accounts.issue_temporary_password("mario.rossi", actor="helpdesk")
    assert browser.login("mario.rossi", temporary).status == 303
