"""Password login through the flow, on both store pairs."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp.mfa.policy import aware
from idp.sessions import SSO_COOKIE
from idp.store.models import Account, AuditEvent
from tests.support.pages import Browser


def sso_cookie(browser):
    return browser.client.get_cookie(SSO_COOKIE)


def test_login_page_has_labelled_username_and_password_fields(browser):
    page = browser.open_login()
    assert page.status == 200
    for field in ("username", "password"):
        assert re.search(rf'<label for="{field}">', page.text)
        assert f'id="{field}" name="{field}"' in page.text
    assert 'name="csrf_token"' in page.text
    assert 'name="remember"' in page.text


@pytest.mark.parametrize(
    "typed",
    [
        "mario.rossi",
        "  MARIO.Rossi ",
        "20012345",
        "10000001",
        "mario.rossi@studenti.uni.example.it",
        "Mario.Rossi@Studenti.Uni.Example.IT",
    ],
)
def test_login_accepts_every_identifier_of_the_account(browser, make_account, typed):
    account = make_account(student_id="20012345")
    typed = typed.replace("10000001", account.person_code)
    page = browser.login(typed, "Correct-Horse-9")
    assert page.status == 303, page.alerts
    assert page.location == "/account"
    account_page = browser.get("/account")
    assert account_page.status == 200
    assert account.person_code in account_page.text


def test_unknown_user_and_wrong_password_get_the_same_message(browser, make_account):
    make_account()
    unknown = browser.login("nobody", "Correct-Horse-9")
    wrong = browser.login("mario.rossi", "wrong-password-1")
    assert unknown.status == wrong.status == 401
    assert unknown.alerts == wrong.alerts
    assert "Nome utente o password errati." in unknown.alerts
    assert sso_cookie(browser) is None


def test_failed_logins_are_audited_without_the_password(app, browser, make_account):
    make_account()
    browser.login("mario.rossi", "wrong-password-1")
    with app.extensions["varco"].db.session() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "login.failed")).scalars().all()
    assert len(events) == 1
    assert "wrong-password-1" not in str(events[0].detail)


def test_a_new_login_replaces_the_previous_session_id(app, browser, make_account):
    make_account()
    browser.login("mario.rossi", "Correct-Horse-9")
    first = sso_cookie(browser).value
    # A login flow started while the old cookie is still sent (e.g. a relying service forcing re-authentication).
    state = app.extensions["varco"].flows
    with app.test_request_context():
        from idp.flow import LoginRequest

        browser_value = browser.client.get_cookie("varco_browser").value.rpartition(".")[0]
        flow = state.start(LoginRequest(force_authn=True), browser_value)
    page = browser.get(f"/login?flow={flow.id}")
    done = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert done.status == 303
    assert sso_cookie(browser).value != first
    assert app.extensions["varco"].sessions.get(first) is None


def test_planted_session_cookie_is_not_adopted_at_login(app, browser, make_account):
    make_account()
    browser.client.set_cookie(SSO_COOKIE, "attacker-chosen-session-id")
    browser.login("mario.rossi", "Correct-Horse-9")
    assert sso_cookie(browser).value != "attacker-chosen-session-id"
    assert app.extensions["varco"].sessions.get("attacker-chosen-session-id") is None


def test_session_cookie_is_httponly_lax_and_not_persistent_by_default(app, make_account):
    make_account()
    client = app.test_client()
    from tests.support.pages import Browser

    b = Browser(client)
    page = b.submit(b.open_login(), username="mario.rossi", password="Correct-Horse-9")
    assert page.status == 303
    cookie = client.get_cookie(SSO_COOKIE)
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    assert cookie.expires is None
    assert not cookie.secure  # plain http in this test; see the https test below


def test_secure_flag_is_set_when_served_over_https(app, make_account):
    make_account()
    client = app.test_client()
    page = client.get("/login", base_url="https://idp.example.it")
    html = page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    action = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
    response = client.post(
        action,
        base_url="https://idp.example.it",
        data={"csrf_token": token, "username": "mario.rossi", "password": "Correct-Horse-9"},
    )
    set_cookie = [v for v in response.headers.getlist("Set-Cookie") if v.startswith(SSO_COOKIE)][0]
    assert "Secure" in set_cookie
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie


def test_stay_connected_makes_a_long_lived_session(app, browser, make_account):
    make_account()
    page = browser.login("mario.rossi", "Correct-Horse-9", remember="on")
    assert page.status == 303
    cookie = sso_cookie(browser)
    assert cookie.expires is not None
    session = app.extensions["varco"].sessions.get(cookie.value)
    assert session.remember is True
    assert session.expires_at - session.auth_time >= 29 * 86400


def test_logout_ends_the_session(app, browser, make_account):
    make_account()
    browser.login("mario.rossi", "Correct-Horse-9")
    sid = sso_cookie(browser).value
    confirm = browser.get("/logout")
    assert confirm.status == 200
    done = browser.submit(confirm)
    assert done.status == 200
    assert app.extensions["varco"].sessions.get(sid) is None
    assert browser.get("/account").status == 303


def test_logout_without_its_token_is_refused(app, browser, make_account):
    make_account()
    browser.login("mario.rossi", "Correct-Horse-9")
    sid = sso_cookie(browser).value
    page = browser.post("/logout", {})
    assert page.status == 400
    assert app.extensions["varco"].sessions.get(sid) is not None


def test_disabled_account_cannot_log_in(app, browser, make_account):
    make_account()
    app.extensions["varco"].accounts.set_status("mario.rossi", "disabled", actor="test")
    page = browser.login("mario.rossi", "Correct-Horse-9")
    assert page.status == 403
    assert "disattivato" in page.alerts
    assert sso_cookie(browser) is None


def test_repeated_failures_throttle_the_account(app, browser, make_account):
    make_account()
    limit = app.extensions["varco"].settings.login.failed_attempts_per_account
    for _ in range(limit):
        assert browser.login("mario.rossi", "wrong-password-1").status == 401
    page = browser.login("mario.rossi", "Correct-Horse-9")
    assert page.status == 429
    assert "Troppi tentativi falliti" in page.alerts
    app.extensions["varco"].accounts.unlock("mario.rossi", actor="test")
    assert browser.login("mario.rossi", "Correct-Horse-9").status == 303


def test_throttling_does_not_reveal_whether_an_account_exists(app, browser):
    limit = app.extensions["varco"].settings.login.failed_attempts_per_account
    for _ in range(limit):
        assert browser.login("ghost", "wrong-password-1").status == 401
    assert browser.login("ghost", "wrong-password-1").status == 429


def test_next_parameter_only_returns_to_local_paths(browser, make_account):
    make_account()
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        browser.client.delete_cookie(SSO_COOKIE)
        start = browser.follow(browser.get(f"/login?next={hostile}"))
        done = browser.submit(start, username="mario.rossi", password="Correct-Horse-9")
        assert done.location == "/account", hostile


def test_logged_in_user_opening_login_goes_straight_on(browser, make_account):
    make_account()
    browser.login("mario.rossi", "Correct-Horse-9")
    page = browser.get("/login?next=/account")
    assert page.status == 303
    assert page.location == "/account"


def test_password_hash_is_upgraded_when_parameters_change(app, settings, make_account):
    from idp.app import create_app
    from tests.support.pages import Browser

    account = make_account()
    stronger = settings.replace(passwords={"argon2_time_cost": 3})
    app2 = create_app(stronger)
    page = Browser(app2.test_client()).login("mario.rossi", "Correct-Horse-9")
    assert page.status == 303
    updated = app2.extensions["varco"].accounts.get(account.id)
    assert ",t=3," in updated.password_hash
    assert updated.password_hash.startswith("$argon2id$")
    app2.extensions["varco"].db.dispose()


def test_a_new_login_of_the_same_person_keeps_the_services_of_the_old_session(app, browser, make_account):
    make_account()
    browser.login("mario.rossi", "Correct-Horse-9")
    sessions = app.extensions["varco"].sessions
    first = sso_cookie(browser).value
    sessions.add_participant(first, "oidc", "lms", {"sid": "x"})
    with app.test_request_context():
        from idp.flow import LoginRequest

        browser_value = browser.client.get_cookie("varco_browser").value.rpartition(".")[0]
        flow = app.extensions["varco"].flows.start(LoginRequest(force_authn=True), browser_value)
    page = browser.get(f"/login?flow={flow.id}")
    browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    second = sso_cookie(browser).value
    assert second != first
    assert [p["relying_party"] for p in sessions.participants(second)] == ["lms"]


def test_a_login_is_counted_and_audited_with_the_browser_address(app, make_account):
    account = make_account()
    before = account.updated_at
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert Browser(client).login("mario.rossi", "Correct-Horse-9").status == 303
    with app.extensions["varco"].db.session() as session:
        row = session.get(Account, account.id)
        events = session.execute(
            select(AuditEvent).where(AuditEvent.account_id == account.id, AuditEvent.action == "login.password")
        ).scalars().all()
    assert row.login_count == 1
    assert row.last_login_at is not None
    assert aware(row.updated_at) >= aware(before)
    assert [(e.actor, e.remote_addr, e.detail) for e in events] == [("mario.rossi", "192.0.2.7", {})]
