"""Malformed and hostile input to the login pages: a clear message, never a 500, nothing written."""

from __future__ import annotations

import html
import threading

import pytest
import requests
from sqlalchemy import func, select

from idp.sessions import SSO_COOKIE
from idp.store.models import Account, AuditEvent
from tests.support.live import LiveServer
from tests.support.pages import FORM, TOKEN


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": "", "password": "Correct-Horse-9"}, "username"),
        ({"username": "mario.rossi", "password": ""}, "password"),
        ({"username": "   ", "password": "Correct-Horse-9"}, "username"),
    ],
)
def test_empty_fields_are_named_in_the_error(browser, make_account, fields, field):
    make_account()
    page = browser.submit(browser.open_login(), **fields)
    assert page.status == 400
    assert "Campo obbligatorio." in page.alerts
    assert f'href="#{field}"' in page.text
    assert f'id="{field}-error"' in page.text


@pytest.mark.parametrize("field", ["username", "password"])
def test_ten_kilobyte_fields_are_refused_as_too_long(browser, make_account, field):
    make_account()
    fields = {"username": "mario.rossi", "password": "Correct-Horse-9", field: "a" * 10240}
    page = browser.submit(browser.open_login(), **fields)
    assert page.status == 400
    assert "Il testo inserito è troppo lungo." in page.alerts
    assert browser.client.get_cookie(SSO_COOKIE) is None


def test_invalid_utf8_is_refused_with_a_clear_message(browser, make_account):
    make_account()
    page = browser.open_login()
    body = b"csrf_token=" + page.token.encode() + b"&username=mario%FF%FE.rossi&password=Correct-Horse-9"
    response = browser.client.post(page.action, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "caratteri non leggibili" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["mario\x00rossi", "mario\x1b[31mrossi", "mario\u0085rossi"])
def test_control_characters_are_refused(browser, make_account, value):
    make_account()
    page = browser.submit(browser.open_login(), username=value, password="Correct-Horse-9")
    assert page.status == 400
    assert "caratteri di controllo" in page.alerts


def test_missing_csrf_token_is_refused(browser, make_account):
    make_account()
    page = browser.open_login()
    response = browser.post(page.action, {"username": "mario.rossi", "password": "Correct-Horse-9"})
    assert response.status == 400
    assert "senza il codice di sicurezza" in response.alerts
    assert browser.client.get_cookie(SSO_COOKIE) is None


def test_forged_csrf_token_is_refused(browser, make_account):
    make_account()
    page = browser.open_login()
    nonce = page.token.partition(".")[0]
    response = browser.post(
        page.action,
        {
            "csrf_token": nonce + ".0123456789abcdef0123456789abcdef",
            "username": "mario.rossi",
            "password": "Correct-Horse-9",
        },
    )
    assert response.status == 400
    assert "non è valido" in response.alerts
    assert browser.client.get_cookie(SSO_COOKIE) is None


def test_token_from_another_browser_is_refused(app, make_account):
    from tests.support.pages import Browser

    make_account()
    victim = Browser(app.test_client())
    attacker = Browser(app.test_client())
    victim_page = victim.open_login()
    attacker.open_login()
    response = attacker.post(
        victim_page.action, {"csrf_token": victim_page.token, "username": "mario.rossi", "password": "Correct-Horse-9"}
    )
    assert response.status == 400
    assert attacker.client.get_cookie(SSO_COOKIE) is None


def test_replayed_login_form_is_refused(browser, make_account):
    make_account()
    page = browser.open_login()
    fields = {"csrf_token": page.token, "username": "mario.rossi", "password": "Correct-Horse-9"}
    assert browser.post(page.action, fields).status == 303
    browser.client.delete_cookie(SSO_COOKIE)
    replay = browser.post(page.action, fields)
    assert replay.status == 400
    assert "già stato inviato" in replay.alerts
    assert browser.client.get_cookie(SSO_COOKIE) is None


def test_one_login_form_posted_eight_times_at_once_logs_in_once(app, make_account):
    """The same form sent on eight connections at the same instant (a double-click, a replaying
    attacker): one login, seven refusals as a replay, one count and one audit row."""
    account = make_account()
    services = app.extensions["varco"]
    with LiveServer(app) as live, requests.Session() as browser:
        page = browser.get(live.url + "/login")
        form = {
            "csrf_token": TOKEN.search(page.text).group(1),
            "username": "mario.rossi",
            "password": "Correct-Horse-9",
        }
        action = live.url + html.unescape(FORM.search(page.text).group(1))
        cookies = browser.cookies.get_dict()
        start, answers = threading.Barrier(8), []

        def post() -> None:
            start.wait()
            answer = requests.post(action, data=form, cookies=cookies, allow_redirects=False, timeout=30)
            answers.append((answer.status_code, SSO_COOKIE in answer.cookies))

        posts = [threading.Thread(target=post) for _ in range(8)]
        for thread in posts:
            thread.start()
        for thread in posts:
            thread.join()
    assert sorted(answers) == [(303, True)] + [(400, False)] * 7
    with services.db.session() as session:
        assert session.get(Account, account.id).login_count == 1
        logins = session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "login.password")
        ).scalar_one()
    assert logins == 1


def test_replayed_form_after_a_failed_attempt_is_refused(browser, make_account):
    make_account()
    page = browser.open_login()
    fields = {"csrf_token": page.token, "username": "mario.rossi", "password": "wrong-password-1"}
    assert browser.post(page.action, fields).status == 401
    fields["password"] = "Correct-Horse-9"
    replay = browser.post(page.action, fields)
    assert replay.status == 400
    assert "già stato inviato" in replay.alerts


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_http_method_gets_a_clear_405(browser, method):
    response = browser.client.open("/login", method=method)
    assert response.status_code == 405
    assert "metodo HTTP errato" in response.get_data(as_text=True)


def test_post_without_a_flow_asks_to_start_again(browser):
    page = browser.post("/login", {"username": "mario.rossi", "password": "x"})
    assert page.status == 400
    assert "scaduta" in page.alerts


def test_unknown_flow_id_asks_to_start_again(browser):
    page = browser.get("/login?flow=" + "A" * 500)
    assert page.status == 400
    assert 'href="/login"' in page.text


def test_oversized_request_body_gets_413(browser):
    page = browser.open_login()
    response = browser.client.post(page.action, data={"username": "x" * 400_000, "password": "y"})
    assert response.status_code == 413
    assert "troppo grande" in response.get_data(as_text=True)


def test_markup_and_sql_metacharacters_are_stored_and_shown_verbatim(app, browser, make_account):
    hostile_given = "<script>alert('x')</script>"
    hostile_family = "O'Brien\"; DROP TABLE accounts;--"
    account = make_account(given_name=hostile_given, family_name=hostile_family)
    with app.extensions["varco"].db.session() as session:
        stored = session.get(Account, account.id)
        assert stored.given_name == hostile_given
        assert stored.family_name == hostile_family
        assert session.execute(select(func.count()).select_from(Account)).scalar_one() == 1
    browser.login("mario.rossi", "Correct-Horse-9")
    page = browser.get("/account")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "O&#39;Brien&#34;; DROP TABLE accounts;--" in page.text


def test_typed_username_with_markup_is_echoed_escaped(browser):
    page = browser.submit(browser.open_login(), username='"><img src=x onerror=alert(1)>', password="whatever-1")
    assert page.status == 401
    assert "<img src=x" not in page.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_sql_metacharacters_in_the_username_are_just_a_wrong_login(browser, make_account):
    make_account()
    page = browser.submit(browser.open_login(), username="' OR '1'='1' --", password="' OR '1'='1")
    assert page.status == 401
    assert "Nome utente o password errati." in page.alerts


def test_raw_non_ascii_bytes_in_a_form_are_refused(browser, make_account):
    make_account()
    page = browser.open_login()
    body = b"csrf_token=" + page.token.encode() + b"&username=mario\xff.rossi&password=Correct-Horse-9"
    response = browser.client.post(page.action, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "caratteri non leggibili" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        "/login?login_hint=%FF",
        "/login?next=/account%C0%AF",
        "/login?lang=en&login_hint=mario%ED%A0%80",
        "/oidc/authorize?client_id=x&response_type=code&state=%FF",
        "/saml/sso/redirect?SAMLRequest=abc&RelayState=%FF%C0%AF",
    ],
)
def test_a_query_string_that_is_not_utf8_is_refused_whole(browser, url):
    # Werkzeug would put U+FFFD in place of the bytes: a `state` or RelayState echoed back would no
    # longer be the one the client sent, and a username would be prefilled with junk.
    response = browser.client.get(url)
    assert response.status_code == 400
    expected = (
        "The address of this page contains characters that could not be read."
        if "lang=en" in url
        else "L'indirizzo di questa pagina contiene caratteri non leggibili."
    )
    assert expected in html.unescape(response.get_data(as_text=True))


def test_a_query_string_in_utf8_is_read_whether_escaped_or_sent_as_raw_bytes(browser):
    assert 'value="José"' in browser.get("/login?login_hint=Jos%C3%A9").text
    # (a client that does not escape sends the bytes; the WSGI server hands them over as latin-1)
    raw = "login_hint=" + "José".encode().decode("latin-1")
    response = browser.client.get("/login", environ_overrides={"QUERY_STRING": raw})
    assert 'value="José"' in response.get_data(as_text=True)


@pytest.mark.parametrize("hint", ["%00", "mario%1B%5B31m", "mario%C2%85"])
def test_a_login_hint_with_control_characters_is_not_prefilled(browser, hint):
    page = browser.get(f"/login?login_hint={hint}")
    assert page.status == 200
    assert 'name="username" value=""' in page.text or 'value=""' in page.text.split('name="username"')[1][:200]


@pytest.mark.parametrize("path", ["/login", "/oidc/token", "/logout"])
def test_a_body_whose_length_is_ambiguous_is_refused(browser, path):
    # RFC 9112 6.1, 6.3: chunked is the one coding a request may use, and a Content-Length beside
    # it from a server that did not de-chunk the body (no wsgi.input_terminated) is a smuggling attempt.
    form = {"data": "grant_type=client_credentials", "content_type": "application/x-www-form-urlencoded"}
    for coding in ("chunked", "gzip", "chunked, chunked"):
        response = browser.client.post(path, headers={"Transfer-Encoding": coding}, **form)
        assert response.status_code == 400, (coding, response.status_code)
