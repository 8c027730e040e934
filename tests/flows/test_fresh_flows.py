"""Opening the login page writes nothing: a fresh flow and its form token are carried by their MACs
and expiry, and the store learns of them only when the form is used (once) or the flow changes."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from idp.store.models import EphemeralEntry
from idp.web import new_form_token, take_form_token
from tests.support.pages import Browser


def stored_keys(app, redis_client) -> int:
    svc = app.extensions["varco"]
    if svc.ephemeral.name == "redis":
        return len(list(redis_client.scan_iter(match=svc.ephemeral.prefix + "*", count=1000)))
    with svc.db.session() as session:
        return session.execute(select(func.count()).select_from(EphemeralEntry)).scalar_one()


def test_anonymous_login_pages_write_nothing_to_the_store(app, redis_client):
    before = stored_keys(app, redis_client)
    for _ in range(5):
        page = Browser(app.test_client()).open_login()
        assert page.status == 200
        assert page.token
    assert stored_keys(app, redis_client) == before


def test_a_fresh_flow_belongs_to_the_browser_that_opened_it(app, make_account):
    make_account()
    mine = Browser(app.test_client())
    page = mine.open_login()
    other = Browser(app.test_client())
    other.open_login()
    # The other browser posts my form (my flow id and token) with its own browser cookie.
    credentials = {"username": "mario.rossi", "password": "Correct-Horse-9"}
    stolen = other.post(page.action, {"csrf_token": page.token, **credentials})
    assert stolen.status == 400
    assert "scaduta" in stolen.alerts
    assert mine.submit(page, username="mario.rossi", password="Correct-Horse-9").status == 303


@pytest.mark.parametrize("mangle", ["flip_mac", "flip_time", "shorten"])
def test_a_tampered_fresh_flow_id_is_an_expired_flow(browser, make_account, mangle):
    make_account()
    page = browser.open_login()
    action = page.action
    flow_id = action.split("flow=", 1)[1]
    tampered = {
        "flip_mac": flow_id[:-1] + ("A" if flow_id[-1] != "A" else "B"),
        # One hour later: an attempt to stretch the flow's life.
        "flip_time": flow_id[:16] + f"{int(flow_id[16:24], 16) + 3600:08x}" + flow_id[24:],
        "shorten": flow_id[:-1],
    }[mangle]
    response = browser.post(
        "/login?flow=" + tampered, {"csrf_token": page.token, "username": "mario.rossi", "password": "Correct-Horse-9"}
    )
    assert response.status == 400
    assert "scaduta" in response.alerts


def test_a_fresh_flow_expires_with_the_flow_lifetime(app, browser, make_account, monkeypatch):
    make_account()
    page = browser.open_login()
    ttl = app.extensions["varco"].flows.ttl
    later = time.time() + ttl + 5
    monkeypatch.setattr(time, "time", lambda: later)
    response = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert response.status == 400
    assert "scaduta" in response.alerts


def test_an_expired_form_token_is_refused_and_a_used_one_is_a_replay(app):
    svc = app.extensions["varco"]
    expired = new_form_token(svc, "browser-1", "flow:x", ttl=-1)
    with pytest.raises(Exception, match="form_expired"):
        take_form_token(svc, "browser-1", "flow:x", expired)
    token = new_form_token(svc, "browser-1", "flow:x", ttl=60)
    with pytest.raises(Exception, match="invalid"):
        take_form_token(svc, "browser-2", "flow:x", token)
    with pytest.raises(Exception, match="invalid"):
        take_form_token(svc, "browser-1", "flow:y", token)
    nonce, expires, tag = token.split(".")
    with pytest.raises(Exception, match="invalid"):
        take_form_token(svc, "browser-1", "flow:x", f"{nonce}.{int(expires) + 600}.{tag}")
    take_form_token(svc, "browser-1", "flow:x", token)
    with pytest.raises(Exception, match="replayed"):
        take_form_token(svc, "browser-1", "flow:x", token)


def test_an_expired_login_form_says_so(app, browser, make_account):
    make_account()
    page = browser.open_login()
    flow_id = page.action.split("flow=", 1)[1]
    browser_value = browser.client.get_cookie("varco_browser").value.rpartition(".")[0]
    # The flow is live; only the form's token has run out.
    expired = new_form_token(app.extensions["varco"], browser_value, f"flow:{flow_id}", ttl=-1)
    credentials = {"username": "mario.rossi", "password": "Correct-Horse-9"}
    response = browser.post(page.action, {"csrf_token": expired, **credentials})
    assert response.status == 400
    assert "Questo modulo è scaduto" in response.alerts
    assert browser.submit(page, username="mario.rossi", password="Correct-Horse-9").status == 303


def test_an_abandoned_fresh_flow_does_not_start_over(app, browser, make_account):
    make_account()
    page = browser.open_login()
    svc = app.extensions["varco"]
    flow_id = page.action.split("flow=", 1)[1]
    state = svc.flows.load(flow_id, browser.client.get_cookie("varco_browser").value.rpartition(".")[0])
    svc.flows.abandon(state)
    response = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert response.status == 400
    assert "scaduta" in response.alerts


def test_a_fault_of_the_fast_path_before_anything_is_used_leaves_the_request_to_the_framework(
    app, monkeypatch, caplog
):
    from idp.flow.fastpath import LoginFastPath

    def broken(self, locale, script_name):  # type: ignore[no-untyped-def]
        raise RuntimeError("page cache broken")

    monkeypatch.setattr(LoginFastPath, "page", broken)
    page = Browser(app.test_client()).open_login()
    assert page.status == 200
    assert 'name="csrf_token"' in page.text
    assert "login fast path failed on GET /login" in caplog.text


def test_a_fault_after_the_form_token_is_spent_gets_the_framework_error_page(app, make_account, monkeypatch):
    import idp.flow.fastpath as fastpath

    make_account()
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    browser = Browser(app.test_client())
    page = browser.open_login()

    def broken(ctx, form):  # type: ignore[no-untyped-def]
        raise RuntimeError("step broken")

    monkeypatch.setattr(fastpath.PASSWORD_STEP, "submit", broken)
    response = browser.submit(page, username="mario.rossi", password="Correct-Horse-9")
    assert response.status == 500
    assert "<html" in response.text.lower()
    assert browser.client.get_cookie("varco_sso") is None
    # The token was used up by the fast path; the view did not take it for a replay.
    assert "già stato inviato" not in response.text
