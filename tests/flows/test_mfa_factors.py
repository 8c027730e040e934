"""SMS codes, passkeys, temporary deactivation by e-mail, and factor management in /account."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from idp.sessions import SSO_COOKIE
from idp.store.models import Account
from tests.support.http_sink import HttpSink
from tests.support.mfa import code, enrolled, heading, login, set_login_count
from tests.support.pages import Browser
from tests.support.soft_authenticator import SoftAuthenticator

pytestmark = pytest.mark.mfa_policy

OPTIONS = re.compile(r'<script type="application/json" id="webauthn-options">(.*?)</script>', re.S)


def sso(app, browser):
    return app.extensions["varco"].sessions.get(browser.client.get_cookie(SSO_COOKIE).value)


# --- SMS ---------------------------------------------------------------------------------------
@pytest.fixture
def sms_app(settings):
    from idp.app import create_app

    with HttpSink() as sink:
        app = create_app(settings.replace(mfa={"sms_gateway_url": sink.url + "/send"}))
        yield app, sink
        app.extensions["varco"].db.dispose()


def second_login(app):
    """A student's second login on `app`, which demands enrolment; returns (browser, page)."""
    from idp.accounts.service import NewAccount

    account = app.extensions["varco"].accounts.create(
        NewAccount("mario.rossi", "Mario", "Rossi", "mario.rossi@uni.example.it"), "Correct-Horse-9"
    )
    set_login_count(app, account.id, 1)
    return login(app)


def sent_code(sink: HttpSink) -> str:
    return re.search(r"\b(\d{6})\b", sink.requests[-1].json()["text"]).group(1)


def test_sms_enrolment_verifies_the_phone_then_codes_log_in(sms_app, make_account):
    app, sink = sms_app
    browser, page = second_login(app)
    page = browser.follow(browser.submit(page, action="sms"))
    bad = browser.submit(page, action="send", phone="call me maybe")
    assert bad.status == 400
    page = browser.follow(browser.submit(bad, action="send", phone="333 123 4567"))
    assert sink.requests[-1].json()["to"] == "+393331234567"
    wrong = browser.submit(page, action="confirm", otp="000000")
    assert wrong.status == 401
    recovery = browser.follow(browser.submit(wrong, action="confirm", otp=sent_code(sink)))
    assert 'id="recovery-codes"' in recovery.text
    browser.submit(recovery, action="continue")
    assert "sms" in sso(app, browser).amr
    # Next login: ask for a code by SMS, then use it once.
    browser, page = login(app)
    page = browser.submit(page, action="send_sms")
    assert page.status == 200
    texted = sent_code(sink)
    assert browser.submit(page, otp=texted).location == "/account"
    assert {"pwd", "sms", "mfa"} <= set(sso(app, browser).amr)
    again, page = login(app)
    assert again.submit(page, otp=texted).status == 401


def test_sms_resend_is_throttled(sms_app):
    app, sink = sms_app
    browser, page = second_login(app)
    page = browser.follow(browser.submit(page, action="sms"))
    page = browser.follow(browser.submit(page, action="send", phone="+39 333 1234567"))
    too_soon = browser.submit(page, action="resend")
    assert too_soon.status == 429
    assert len(sink.requests) == 1


def test_sms_gateway_failure_is_a_clear_message(sms_app):
    app, sink = sms_app
    sink.status = 500
    browser, page = second_login(app)
    page = browser.follow(browser.submit(page, action="sms"))
    failed = browser.submit(page, action="send", phone="+39 333 1234567")
    assert failed.status in (502, 503)
    assert failed.alerts


# --- passkeys -----------------------------------------------------------------------------------
def test_passkey_enrolment_and_login_with_a_software_authenticator(app, make_account):
    account = make_account()
    set_login_count(app, account.id, 1)
    authenticator = SoftAuthenticator()
    origin = app.extensions["varco"].settings.server.issuer
    browser, page = login(app)
    page = browser.follow(browser.submit(page, action="webauthn"))
    options = html.unescape(OPTIONS.search(page.text).group(1))
    created = authenticator.create(options, origin)
    form = re.findall(r'<form method="post" action="([^"]+)" novalidate id="webauthn-form">', page.text)
    assert form
    recovery = browser.follow(
        browser.post(page.action, {"csrf_token": page.token, "action": "webauthn", "webauthn_response": created})
    )
    assert 'id="recovery-codes"' in recovery.text, heading(recovery)
    browser.submit(recovery, action="continue")
    assert "hwk" in sso(app, browser).amr
    # Log in again with the passkey as the second factor.
    browser, page = login(app)
    options = html.unescape(OPTIONS.search(page.text).group(1))
    asserted = authenticator.get(options, origin)
    done = browser.post(page.action, {"csrf_token": page.token, "action": "webauthn", "webauthn_response": asserted})
    assert done.location == "/account"
    assert {"pwd", "hwk", "mfa"} <= set(sso(app, browser).amr)


def test_passkey_assertion_for_another_origin_is_refused(app, make_account):
    account = make_account()
    set_login_count(app, account.id, 1)
    authenticator = SoftAuthenticator()
    origin = app.extensions["varco"].settings.server.issuer
    browser, page = login(app)
    page = browser.follow(browser.submit(page, action="webauthn"))
    created = authenticator.create(html.unescape(OPTIONS.search(page.text).group(1)), origin)
    recovery = browser.follow(
        browser.post(page.action, {"csrf_token": page.token, "action": "webauthn", "webauthn_response": created})
    )
    browser.submit(recovery, action="continue")
    browser, page = login(app)
    phished = authenticator.get(html.unescape(OPTIONS.search(page.text).group(1)), "https://evil.example")
    refused = browser.post(page.action, {"csrf_token": page.token, "action": "webauthn", "webauthn_response": phished})
    assert refused.status == 401
    assert browser.client.get_cookie(SSO_COOKIE) is None


# --- deactivation through the personal e-mail ------------------------------------------------------
@pytest.mark.smtp
def test_deactivation_link_by_email_lifts_2fa_once(app, make_account, smtp_sink):
    account, secret = enrolled(app, make_account, personal_email="mario@example.org")
    browser = Browser(app.test_client())
    form = browser.get("/mfa/deactivate")
    sent = browser.submit(form, username="mario.rossi")
    assert sent.status == 200
    mail = smtp_sink.wait_for(1)[0]
    assert mail["To"] == "mario@example.org"
    link = re.search(r"(http\S+/mfa/deactivate/\S+)", mail.get_content()).group(1)
    path = urlsplit(link).path
    assert browser.get(path).status == 200  # a mail scanner opening it does not use it up
    confirm = browser.get(path)
    assert confirm.status == 200
    done = browser.submit(confirm)
    assert done.status == 200
    assert browser.get(path).status == 400  # single use
    # The account's own 2FA requirement is lifted: the password alone logs in.
    plain = Browser(app.test_client())
    assert plain.login("mario.rossi", "Correct-Horse-9").location == "/account"
    # A service that requires 2FA still refuses, with a clear page.
    from idp.flow.frontend import begin_login
    from idp.flow.request import LoginRequest

    cookies = "; ".join(f"{c.key}={c.value}" for c in plain.client._cookies.values())
    with app.test_request_context("/", headers={"Cookie": cookies}):
        outcome = begin_login(LoginRequest(require_mfa=True))
    page = plain.get(outcome.headers["Location"])
    assert "deactivated" in page.text or "disattivat" in page.text
    assert 'name="otp"' not in page.text


@pytest.mark.smtp
def test_deactivation_request_answers_the_same_for_unknown_accounts(app, smtp_sink):
    browser = Browser(app.test_client())
    form = browser.get("/mfa/deactivate")
    answer = browser.submit(form, username="nobody")
    assert answer.status == 200
    assert smtp_sink.wait_for(1, timeout=0.5) == []


def test_forged_deactivation_link_is_refused(app):
    page = Browser(app.test_client()).get("/mfa/deactivate/" + "x" * 43)
    assert page.status == 400


# --- /account/security -------------------------------------------------------------------------
def test_removing_the_only_factor_is_refused_while_2fa_is_required(app, make_account):
    account, secret = enrolled(app, make_account)
    browser, page = login(app)
    assert browser.submit(page, otp=code(secret, 1)).location == "/account"
    security = browser.get("/account/security")
    factor = re.search(r'name="factor" value="([0-9a-f]+)"', security.text).group(1)
    refused = browser.post("/account/security", {"csrf_token": security.token, "action": "remove", "factor": factor})
    assert refused.status == 400
    assert app.extensions["varco"].mfa.has_factor(account.id)


def test_changing_factors_needs_a_fresh_second_factor(app, make_account):
    account, secret = enrolled(app, make_account)
    with app.extensions["varco"].db.session() as session:
        session.execute(update(Account).where(Account.id == account.id).values(login_count=0))
    browser = Browser(app.test_client())
    assert browser.login("mario.rossi", "Correct-Horse-9").location == "/account"  # password-only session
    security = browser.get("/account/security")
    step_up = browser.post("/account/security", {"csrf_token": security.token, "action": "recovery"})
    assert step_up.status == 303
    assert step_up.location.startswith("/login?flow=")
    page = browser.get(step_up.location)
    assert 'name="otp"' in page.text
    assert browser.submit(page, otp=code(secret, 1)).location == "/account/security"
    security = browser.get("/account/security")
    regenerated = browser.post("/account/security", {"csrf_token": security.token, "action": "recovery"})
    assert regenerated.status == 200
    assert len(re.findall(r"<li><code>", regenerated.text)) == 10


def test_adding_a_second_factor_from_the_account_page(app, make_account):
    account, secret = enrolled(app, make_account)
    browser, page = login(app)
    assert browser.submit(page, otp=code(secret, 1)).location == "/account"
    security = browser.get("/account/security")
    start = browser.post("/account/security", {"csrf_token": security.token, "action": "add"})
    page = browser.follow(start)
    assert 'value="sms"' in page.text  # the choice of a new factor, the fresh one already given


# --- helpdesk ----------------------------------------------------------------------------------
def test_helpdesk_reset_makes_the_user_enrol_again(app, make_account):
    account, secret = enrolled(app, make_account)
    app.extensions["varco"].mfa.reset(account.id, actor="helpdesk")
    browser, page = login(app)
    assert 'value="totp"' in page.text


@pytest.mark.smtp
def test_deactivation_links_are_limited_per_account_and_hour(app, make_account, smtp_sink):
    enrolled(app, make_account, personal_email="mario@example.org")
    browser = Browser(app.test_client())
    for _ in range(5):
        assert browser.submit(browser.get("/mfa/deactivate"), username="mario.rossi").status == 200
    assert len(smtp_sink.wait_for(3)) == 3
    assert len(smtp_sink.wait_for(4, timeout=0.5)) == 3
