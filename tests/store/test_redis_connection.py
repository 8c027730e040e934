"""The Redis store's own connection handling: each thread's connection answers its commands
directly, a connection the server dropped is replaced without the caller noticing, and one that
timed out is never read again (its late reply must not answer the next command)."""

from __future__ import annotations

import time

import pytest
import redis

from idp.store.ephemeral import EphemeralUnavailable, RedisEphemeral
from tests.conftest import REDIS_URL
from tests.support.stores import private_redis_store


@pytest.fixture
def store():
    with private_redis_store(REDIS_URL, "conn") as store:
        yield store


@pytest.fixture
def admin():
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def test_a_connection_the_server_dropped_is_replaced_without_an_error(store, admin):
    store.set("kept", "yes", 60)
    assert admin.client_kill_filter(_id=store.client.client_id()) == 1
    # The next command finds the connection closed and runs again on a new one.
    assert store.get("kept") == "yes"
    assert store.add("new", "1", 60) is True
    assert store.add("new", "1", 60) is False
    assert store.take("new") == "1"


def test_a_command_that_timed_out_fails_closed_and_its_late_reply_is_never_read(store, admin):
    store.set("first", "one", 60)
    store.set("second", "two", 60)
    # Every client's commands wait for 2.5 s: longer than the store's 2 s socket timeout.
    admin.execute_command("CLIENT", "PAUSE", 2500, "ALL")
    with pytest.raises(EphemeralUnavailable, match="redis"):
        store.get("first")
    time.sleep(0.6)
    assert store.get("second") == "two"
    assert store.get("first") == "one"


def test_an_unreachable_server_is_an_outage_for_every_command():
    store = RedisEphemeral("redis://127.0.0.1:1/0", "x:")
    for call in (
        lambda: store.set("a", "1", 60),
        lambda: store.get("a"),
        lambda: store.add("a", "1", 60),
        lambda: store.take("a"),
        lambda: store.delete("a"),
        lambda: store.incr("a", 60),
        lambda: store.ping(),
        lambda: store.batch([("set", "a", "1", 60), ("get", "a")]),
    ):
        with pytest.raises(EphemeralUnavailable):
            call()


def test_a_batch_on_a_dropped_connection_runs_once_on_a_new_one(store, admin):
    store.set("kept", "yes", 60)
    assert admin.client_kill_filter(_id=store.client.client_id()) == 1
    assert store.batch([("add", "claim", "1", 60), ("get", "kept")]) == [True, "yes"]
    assert store.add("claim", "2", 60) is False


def test_a_batch_that_fails_in_redis_is_an_outage_and_the_connection_stays_in_step(store, admin):
    # A key of another type (not one Varco writes) makes GET fail inside the transaction.
    admin.rpush(store.prefix + "listed", "x")
    with pytest.raises(EphemeralUnavailable, match="transaction failed"):
        store.batch([("set", "a", "1", 60), ("get", "listed")])
    # The next replies answer the next commands.
    assert store.get("a") == "1"
    assert store.batch([("get", "a"), ("set", "b", "2", 60)]) == ["1", None]
    # An error reply to a single command leaves no reply unread either.
    with pytest.raises(EphemeralUnavailable):
        store.get("listed")
    assert store.get("b") == "2"
