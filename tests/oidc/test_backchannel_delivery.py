"""Back-channel logout deliveries are durable: owed until the client acknowledges them, sent once
even when several workers compete, and abandoned (audited) after the last retry."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

from sqlalchemy import select, update

from idp.app import create_app
from idp.oidc.logout import BackchannelLogout
from idp.oidc.models import OidcLogoutDelivery
from idp.store.models import AuditEvent
from tests.oidc.test_endpoints import id_claims, tokens_for


def owed(op) -> list[OidcLogoutDelivery]:
    with op.services.db.session() as session:
        return list(session.scalars(select(OidcLogoutDelivery)))


def log_out_of_webapp(browser, register, uri: str) -> dict:
    _, secret = register("webapp", backchannel_logout_uri=uri)
    tokens = tokens_for(browser, secret)
    page = browser.get("/oidc/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
    assert page.status == 200
    return tokens


def test_a_logout_owed_when_varco_stops_is_delivered_after_the_restart(
    logged_in, register, op, settings, receiver, monkeypatch
):
    monkeypatch.setattr(BackchannelLogout, "RETRY_DELAYS", (3600,))
    rp = receiver(down=True)
    tokens = log_out_of_webapp(logged_in, register, rp.uri)
    deadline = time.monotonic() + 10
    while not any(row.attempts for row in owed(op)) and time.monotonic() < deadline:
        time.sleep(0.05)
    [delivery] = owed(op)
    assert delivery.attempts == 1 and delivery.last_error == "HTTP 500"
    # An hour later, after a restart: the new process finds the row and delivers it.
    rp.down = False
    with op.services.db.session() as session:
        session.execute(update(OidcLogoutDelivery).values(due_at=int(time.time())))
    restarted = create_app(settings).extensions["varco_oidc"]
    restarted.backchannel.wait(10)
    assert owed(op) == [] and len(rp.received) == 1
    header, claims = id_claims(logged_in, rp.received[0])
    _, id_token = id_claims(logged_in, tokens["id_token"])
    assert header["typ"] == "logout+jwt" and claims["exp"] > time.time()
    assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"] and claims["aud"] == "webapp"
    restarted.services.db.dispose()


def test_competing_workers_send_a_delivery_once(app, settings, register, op, receiver):
    rp = receiver(delay=0.3)
    register("webapp", backchannel_logout_uri=rp.uri)
    with op.services.db.session() as session:
        session.add(OidcLogoutDelivery(client_id="webapp", sub="s-1", sid="sid-1", attempts=0, due_at=int(time.time())))
    other = create_app(settings).extensions["varco_oidc"]
    workers = [threading.Thread(target=side.backchannel.deliver_due) for side in (op, other, op, other)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    op.backchannel.wait(10)
    assert rp.hits == 1 and len(rp.received) == 1
    other.services.db.dispose()


def test_an_unreachable_client_is_abandoned_after_the_last_retry_and_audited(
    logged_in, register, op, receiver, monkeypatch
):
    monkeypatch.setattr(BackchannelLogout, "RETRY_DELAYS", (0, 0))
    rp = receiver(down=True)
    log_out_of_webapp(logged_in, register, rp.uri)
    op.backchannel.wait(10)
    assert owed(op) == [] and rp.hits == 3
    with op.services.db.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "oidc.backchannel_logout_abandoned")
        ).all()
    assert [event.detail["client_id"] for event in events] == ["webapp"]
    assert events[0].detail["attempts"] == 3 and events[0].detail["error"] == "HTTP 500"
