"""One contract, three stores: Redis, the SQL store on SQLite and the SQL store on PostgreSQL."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from idp.store.db import Database
from idp.store.ephemeral import SqlEphemeral
from tests.conftest import REDIS_URL
from tests.support.stores import private_redis_store


@pytest.fixture(params=["redis", "sql-sqlite", "sql-postgresql"])
def store(request):
    if request.param == "redis":
        with private_redis_store(REDIS_URL, "contract") as store:
            yield store
        return
    prefix = f"contract:{secrets.token_hex(4)}:"
    url = request.getfixturevalue("sqlite_url" if request.param == "sql-sqlite" else "pg_url")
    db = Database(url)
    yield SqlEphemeral(db, prefix)
    db.dispose()


def test_set_then_get_returns_the_value(store):
    store.set("a", "one", 60)
    assert store.get("a") == "one"
    store.set("a", "two", 60)
    assert store.get("a") == "two"


def test_missing_key_reads_as_none(store):
    assert store.get("absent") is None
    assert store.take("absent") is None


def test_values_expire_after_their_ttl(store):
    store.set("short", "x", 1)
    assert store.get("short") == "x"
    time.sleep(2.1)
    assert store.get("short") is None
    assert store.take("short") is None


def test_add_succeeds_only_for_the_first_caller(store):
    assert store.add("guard", "first", 60) is True
    assert store.add("guard", "second", 60) is False
    assert store.get("guard") == "first"


def test_add_succeeds_again_after_expiry(store):
    assert store.add("guard", "first", 1) is True
    time.sleep(2.1)
    assert store.add("guard", "again", 60) is True
    assert store.get("guard") == "again"


def test_take_returns_the_value_once(store):
    store.set("code", "secret", 60)
    assert store.take("code") == "secret"
    assert store.take("code") is None
    assert store.get("code") is None


def test_delete_removes_the_key(store):
    store.set("gone", "x", 60)
    store.delete("gone")
    assert store.get("gone") is None
    store.delete("never-there")


def test_counters_count_within_their_window(store):
    assert [store.incr("c", 60) for _ in range(3)] == [1, 2, 3]


def test_a_counter_reads_back_as_its_count(store):
    store.incr("read", 60)
    store.incr("read", 60)
    assert store.get("read") == "2"
    assert store.take("read") == "2"
    assert store.get("read") is None


def test_counters_restart_after_their_window(store):
    assert store.incr("w", 1) == 1
    assert store.incr("w", 1) == 2
    time.sleep(2.1)
    assert store.incr("w", 1) == 1


def test_concurrent_add_has_exactly_one_winner(store):
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        results.append(store.add("race", threading.current_thread().name, 60))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_concurrent_take_hands_the_value_to_one_caller(store):
    store.set("once", "value", 60)
    results: list[str | None] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        results.append(store.take("once"))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("value") == 1


def test_concurrent_increments_are_not_lost(store):
    barrier = threading.Barrier(6)

    def bump() -> None:
        barrier.wait()
        for _ in range(5):
            store.incr("many", 60)

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.incr("many", 60) == 31


def test_ping_answers_when_the_store_is_up(store):
    store.ping()


def test_a_batch_runs_its_operations_in_order_and_answers_each(store):
    store.set("old", "before", 60)
    results = store.batch(
        [
            ("add", "claim", "mine", 60),
            ("get", "old"),
            ("add", "claim", "again", 60),
            ("set", "new", "written", 60),
            ("get", "new"),
            ("take", "old"),
            ("delete", "new"),
            ("get", "absent"),
        ]
    )
    assert results == [True, "before", False, None, "written", "before", None, None]
    assert store.get("claim") == "mine"
    assert store.get("old") is None
    assert store.get("new") is None


def test_a_batch_sets_values_with_their_own_ttls(store):
    store.batch([("set", "short", "a", 1), ("set", "long", "b", 60)])
    assert (store.get("short"), store.get("long")) == ("a", "b")
    time.sleep(2.1)
    assert (store.get("short"), store.get("long")) == (None, "b")


def test_an_empty_batch_does_nothing(store):
    assert store.batch([]) == []


def test_concurrent_batches_claiming_one_key_let_exactly_one_win(store):
    wins = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        added, value = store.batch([("add", "raced", threading.current_thread().name, 60), ("get", "raced")])
        wins.append((added, value))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [value for added, value in wins if added]
    assert len(winners) == 1
    # Every caller reads the winner's value, the winner in its own batch.
    assert {value for _, value in wins} == {winners[0]}


def test_a_batch_with_an_unknown_operation_is_refused_whole(store):
    with pytest.raises(ValueError, match="unknown ephemeral store operation"):
        store.batch([("set", "first", "x", 60), ("gte", "first")])
    assert store.get("first") is None
