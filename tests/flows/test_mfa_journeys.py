"""Second factor journeys: seed 002's rules and every path of seed 003's flowchart."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select, update

from idp.sessions import SSO_COOKIE
from idp.store.models import Account, AuditEvent
from tests.support.mfa import code, enrol_totp, heading, login, new_browser, recovery_codes, set_login_count
from tests.support.mfa import enrolled as enrolled_student

pytestmark = pytest.mark.mfa_policy

ITALIAN = {"citizenship": "IT", "fiscal_code": "RSSMRA85T10H501O"}


def session_of(app, browser):
    return app.extensions["varco"].sessions.get(browser.client.get_cookie(SSO_COOKIE).value)


# --- seed 002: the first login tells, the second demands ------------------------------------------
def test_first_login_only_announces_2fa_and_may_skip_it(app, make_account):
    make_account()
    browser, page = login(app)
    assert "Two-factor authentication (2FA) activation" in page.text or "2FA" in heading(page)
    assert 'value="later"' in page.text
    done = browser.submit(page, action="later")
    assert done.location == "/account"
    session = session_of(app, browser)
    assert session.amr == ("pwd",)
    assert session.acr == "https://refeds.org/profile/sfa"


def test_second_login_demands_enrolment_without_a_way_around(app, make_account):
    account = make_account()
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    assert 'value="later"' not in page.text
    refused = browser.submit(page, action="later")
    assert refused.status == 400
    assert browser.client.get_cookie(SSO_COOKIE) is None


def test_foreign_student_enrols_the_app_then_needs_it_at_every_login(app, make_account):
    # Seed 003, citizen = no: local credentials, then 2FA by app.
    account, secret = enrolled_student(app, make_account, citizenship="FR")
    browser, page = login(app)
    assert 'name="otp"' in page.text
    assert 'name="password"' not in page.text
    done = browser.submit(page, otp=code(secret, 1))
    assert done.location == "/account"
    session = session_of(app, browser)
    assert set(session.amr) == {"pwd", "otp", "mfa"}
    assert session.acr == "https://refeds.org/profile/mfa"


def test_enrolment_counts_as_the_second_factor_of_that_login(app, make_account):
    account = make_account()
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    _, recovery = enrol_totp(browser, page)
    assert len(recovery_codes(recovery)) == 10
    browser.submit(recovery, action="continue")
    assert "otp" in session_of(app, browser).amr


def test_wrong_first_code_does_not_enrol(app, services, make_account):
    account = make_account()
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    page = browser.follow(browser.submit(page, action="totp"))
    wrong = browser.submit(page, action="confirm", otp="000000")
    assert wrong.status == 401
    assert not app.extensions["varco"].mfa.has_factor(account.id)


# --- population rules -------------------------------------------------------------------------
def test_staff_configured_for_the_first_login_enrol_at_once(settings):
    from idp.accounts.service import NewAccount
    from idp.app import create_app

    app = create_app(settings.replace(mfa={"first_login_populations": ("staff",)}))
    staff = NewAccount("anna.bianchi", "Anna", "Bianchi", "anna.bianchi@uni.example.it", population="staff")
    app.extensions["varco"].accounts.create(staff, "Correct-Horse-9")
    browser, page = login(app, "anna.bianchi")
    assert 'value="totp"' in page.text
    assert 'value="later"' not in page.text
    app.extensions["varco"].db.dispose()


def test_service_accounts_are_exempt(app, make_account):
    account = make_account("dip.fisica", population="service")
    set_login_count(app, account.id, 5)
    browser = new_browser(app)
    assert browser.login("dip.fisica", "Correct-Horse-9").location == "/account"


def test_guests_enrol_from_the_second_login(app, make_account):
    account = make_account("john.smith", population="guest", citizenship="GB")
    set_login_count(app, account.id, 1)
    _, page = login(app, "john.smith")
    assert 'value="totp"' in page.text


# --- seed 003: Italian citizens --------------------------------------------------------------------
def test_italian_citizen_without_spid_declares_a_reason_then_uses_the_app(app, services, make_account):
    # Seed 003, citizen = yes, SPID/CIE = no.
    account = make_account(**ITALIAN)
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    assert "SPID" in heading(page)
    assert "obbligato" in page.text or "obliged" in page.text
    empty = browser.submit(page, reason="   ")
    assert empty.status == 400
    assert 'id="reason-error"' in empty.text
    page = browser.follow(browser.submit(empty, reason="Non sono residente in Italia"))
    assert 'value="totp"' in page.text
    stored = services.accounts.get(account.id)
    assert stored.spid_waiver_reason == "Non sono residente in Italia"
    until = (
        stored.spid_waiver_until.replace(tzinfo=dt.UTC)
        if stored.spid_waiver_until.tzinfo is None
        else (stored.spid_waiver_until)
    )
    assert until - dt.datetime.now(dt.UTC) > dt.timedelta(days=179)
    with services.db.session() as session:
        actions = session.execute(select(AuditEvent.action, AuditEvent.detail)).all()
    assert ("mfa.spid_waiver_declared", "Non sono residente in Italia") in [(a, d.get("reason")) for a, d in actions]
    secret, recovery = enrol_totp(browser, page)
    assert browser.submit(recovery, action="continue").location == "/account"


def test_the_spid_rule_applies_again_when_the_declaration_expires(app, services, make_account):
    account, secret = enrolled_student(app, make_account, **ITALIAN)
    with services.db.session() as session:
        session.execute(
            update(Account)
            .where(Account.id == account.id)
            .values(spid_waiver_until=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    browser, page = login(app)
    assert "SPID" in heading(page)
    page = browser.follow(browser.submit(page, reason="Still no SPID"))
    assert 'name="otp"' in page.text
    assert browser.submit(page, otp=code(secret, 1)).location == "/account"


def test_italian_citizen_with_spid_activates_2fa_with_spid(app, services, make_account):
    # Seed 003, citizen = yes, SPID/CIE = yes: "activate 2FA with SPID/CIE".
    account = make_account(**ITALIAN)
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    to_broker = browser.submit(page, broker="spid")
    assert to_broker.location.startswith("/federation/mock/spid/login?flow=")
    upstream = browser.get(to_broker.location)
    assert upstream.status == 200
    done = browser.follow(browser.post(to_broker.location, {"fiscal_code": "RSSMRA85T10H501O"}))
    assert done.status == 200
    assert browser.client.get_cookie(SSO_COOKIE) is not None
    assert services.accounts.get(account.id).mfa_upstream is True
    session = session_of(app, browser)
    assert "spid" in session.amr
    assert session.acr == "https://refeds.org/profile/mfa"


def test_with_2fa_via_spid_a_password_alone_is_not_enough(app, services, make_account):
    account = make_account(**ITALIAN)
    set_login_count(app, account.id, 3)
    services.mfa.set_upstream_mfa(account.id, True, actor="test")
    browser, page = login(app)
    assert 'name="broker"' in page.text
    assert browser.client.get_cookie(SSO_COOKIE) is None
    to_broker = browser.submit(page, broker="cie")
    # An upstream identity of another person is refused.
    other = browser.follow(browser.post(to_broker.location, {"fiscal_code": "BNCNNA90A41F205X"}))
    assert browser.client.get_cookie(SSO_COOKIE) is None
    assert "altra persona" in other.text
    to_broker = browser.submit(other, broker="cie")
    done = browser.follow(browser.post(to_broker.location, {"fiscal_code": "RSSMRA85T10H501O"}))
    assert done.status == 200, heading(done)
    assert "cie" in session_of(app, browser).amr


def test_foreigner_may_choose_2fa_via_upstream_too(app, make_account):
    # Seed 003, citizen = no: "activate 2FA by app or SPID/CIE".
    account = make_account(citizenship="FR", fiscal_code="RSSMRA85T10H501O")
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    assert 'value="upstream"' in page.text
    page = browser.follow(browser.submit(page, action="upstream"))
    assert 'name="broker"' in page.text


# --- step-up ---------------------------------------------------------------------------------
def step_up_flow(app, browser, **request_fields):
    """A relying service's request arriving while the browser has a password-only session."""
    from idp.flow.frontend import begin_login
    from idp.flow.request import LoginRequest

    cookies = "; ".join(f"{c.key}={c.value}" for c in browser.client._cookies.values())
    with app.test_request_context("/", headers={"Cookie": cookies}):
        outcome = begin_login(LoginRequest(return_to="/account", **request_fields))
    return outcome


@pytest.mark.parametrize(
    "trigger",
    [
        {"require_mfa": True},
        {"acr_values": ("https://refeds.org/profile/mfa",)},
        {"acr_values": ("mfa",)},
    ],
    ids=["service-flag", "refeds-mfa-authncontext", "acr-values"],
)
def test_step_up_asks_only_the_second_factor(app, make_account, trigger):
    account, secret = enrolled_student(app, make_account)
    # The account's own rule does not demand 2FA here (as after "Deactivate 2FA", or for a new
    # account): its session has the password only, until a service asks for more.
    set_login_count(app, account.id, 0)
    browser = new_browser(app)
    assert browser.login("mario.rossi", "Correct-Horse-9").location == "/account"
    assert session_of(app, browser).amr == ("pwd",)
    outcome = step_up_flow(app, browser, **trigger)
    page = browser.get(outcome.headers["Location"])
    assert 'name="otp"' in page.text
    assert 'name="password"' not in page.text
    assert browser.submit(page, otp=code(secret, 1)).location == "/account"
    session = session_of(app, browser)
    assert {"pwd", "otp", "mfa"} <= set(session.amr)
    assert session.acr == "https://refeds.org/profile/mfa"


def test_a_session_with_a_fresh_second_factor_satisfies_step_up(app, make_account):
    account, secret = enrolled_student(app, make_account)
    browser, page = login(app)
    assert browser.submit(page, otp=code(secret, 1)).location == "/account"
    outcome = step_up_flow(app, browser, require_mfa=True)
    assert outcome.subject == account.id
    assert "otp" in outcome.amr


def test_abandoned_second_factor_yields_nothing(app, make_account):
    from idp.flow.request import LoginRequest

    account, _ = enrolled_student(app, make_account)
    browser = new_browser(app)
    flows = app.extensions["varco"].flows
    browser.get("/login")  # the browser cookie
    browser_value = browser.client.get_cookie("varco_browser").value.rpartition(".")[0]
    state = flows.start(LoginRequest(return_to="/oidc/resume", protocol="oidc", relying_party="lms"), browser_value)
    page = browser.submit(browser.get(f"/login?flow={state.id}"), username="mario.rossi", password="Correct-Horse-9")
    otp_page = browser.follow(page)
    assert 'name="otp"' in otp_page.text
    # The person walks away: no result for the frontend, no session, nothing to exchange.
    assert flows.take_result(state.id, browser_value) is None
    assert browser.client.get_cookie(SSO_COOKIE) is None


# --- codes: replay, format, throttling ------------------------------------------------------------
def test_the_same_totp_code_is_accepted_once(app, make_account):
    account, secret = enrolled_student(app, make_account)
    value = code(secret, 1)
    first, page = login(app)
    assert first.submit(page, otp=value).location == "/account"
    second, page = login(app)
    replay = second.submit(page, otp=value)
    assert replay.status == 401
    assert second.client.get_cookie(SSO_COOKIE) is None


def test_a_code_used_on_one_node_is_refused_on_another(settings, make_account, app):
    from idp.app import create_app

    account, secret = enrolled_student(app, make_account)
    other_node = create_app(settings)
    value = code(secret, 1)
    browser, page = login(app)
    assert browser.submit(page, otp=value).location == "/account"
    browser, page = login(other_node)
    assert browser.submit(page, otp=value).status == 401
    other_node.extensions["varco"].db.dispose()


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("12345a", "6-digit"), ("1234567890123", "6-digit"), ("9" * 100, "6-digit"), ("000000", "not valid"),
     ("expired", "not valid")],
)
def test_bad_codes_get_a_clear_message_and_are_counted(app, make_account, typed, expected):
    account, secret = enrolled_student(app, make_account)
    if typed == "expired":
        typed = code(secret, -3)  # a code from 90 seconds ago, outside the ±1 step window
    browser, page = login(app)
    lang = browser.get(page.action + "&lang=en")
    refused = browser.submit(lang, otp=typed)
    assert refused.status == 401
    assert expected in refused.text
    assert app.extensions["varco"].ephemeral.get(f"mfafail:{account.id}") == "1"


def test_five_wrong_codes_end_the_login(app, make_account):
    account, secret = enrolled_student(app, make_account)
    browser, page = login(app)
    for _ in range(4):
        page = browser.submit(page, otp="000000")
        assert page.status == 401
    ended = browser.submit(page, otp="000000")
    assert ended.status == 429
    assert browser.client.get_cookie(SSO_COOKIE) is None
    again = browser.post(page.action, {"csrf_token": page.token, "otp": code(secret, 1)})
    assert again.status == 400


def test_an_hour_of_failures_locks_the_second_factor(app, make_account):
    account, secret = enrolled_student(app, make_account)
    services = app.extensions["varco"]
    for _ in range(services.settings.mfa.max_failures_per_account_hour):
        services.mfa.note_failure(account.id)
    browser, page = login(app)
    locked = browser.submit(page, otp=code(secret, 1))
    assert locked.status == 429
    assert browser.client.get_cookie(SSO_COOKIE) is None


def test_a_recovery_code_works_once(app, make_account):
    account = make_account()
    set_login_count(app, account.id, 1)
    browser, page = login(app)
    _, recovery = enrol_totp(browser, page)
    codes = recovery_codes(recovery)
    browser.submit(recovery, action="continue")
    first, page = login(app)
    assert first.submit(page, otp=codes[0]).location == "/account"
    second, page = login(app)
    assert second.submit(page, otp=codes[0]).status == 401
    assert app.extensions["varco"].mfa.recovery_codes_left(account.id) == 9


def test_spid_on_the_login_page_logs_in_the_account_with_that_fiscal_code(app, make_account):
    account = make_account(**ITALIAN)
    browser = new_browser(app)
    page = browser.open_login()
    link = re.search(r'href="(/federation/mock/spid/login\?flow=[^"]+)"', page.text).group(1)
    done = browser.follow(browser.post(html.unescape(link), {"fiscal_code": "RSSMRA85T10H501O"}))
    assert done.status == 200
    session = session_of(app, browser)
    assert session.account_id == account.id
    assert session.amr == ("spid",)
    assert session.acr == "https://refeds.org/profile/mfa"


def test_spid_identity_without_an_account_is_told_so(app, make_account):
    make_account(**ITALIAN)
    browser = new_browser(app)
    page = browser.open_login()
    link = re.search(r'href="(/federation/mock/spid/login\?flow=[^"]+)"', page.text).group(1)
    back = browser.follow(browser.post(html.unescape(link), {"fiscal_code": "BNCNNA90A41F205X"}))
    assert 'role="alert"' in back.text
    assert 'name="password"' in back.text
    assert browser.client.get_cookie(SSO_COOKIE) is None
