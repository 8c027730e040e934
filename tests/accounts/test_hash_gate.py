"""argon2id runs on `passwords.concurrent_hashes` threads of its own per process; other threads wait."""

from __future__ import annotations

import os
import threading

import pytest

from idp.accounts.passwords import HashThreads, Passwords
from idp.settings import PasswordSettings


class CountingHasher:
    """The real argon2 hasher, counting how many of its calls run at the same moment."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real = real
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.threads: set[threading.Thread] = set()

    def _track(self, call, *args):  # type: ignore[no-untyped-def]
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.current_thread())
        try:
            return call(*args)
        finally:
            with self.lock:
                self.running -= 1

    def verify(self, stored: str, password: str) -> bool:
        return self._track(self.real.verify, stored, password)

    def hash(self, password: str) -> str:
        return self._track(self.real.hash, password)


def run_in_threads(passwords: Passwords, stored: str, threads: int = 6) -> tuple[list[bool], list[threading.Thread]]:
    results: list[bool] = []
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        results.append(passwords.verify(stored, "Correct-Horse-9"))
        passwords.hash("Another-Horse-7")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results, workers


@pytest.mark.parametrize("limit", [1, 2])
def test_no_more_hashes_at_once_than_the_setting_allows_all_on_the_same_few_threads(limit):
    # Twelve hashes asked for by six threads run at most `limit` at a time, on at most `limit`
    # hashing threads (never the callers'), which keep argon2id's memory block from one hash to the next.
    passwords = Passwords(PasswordSettings(concurrent_hashes=limit))
    stored = passwords.hash("Correct-Horse-9")
    counter = CountingHasher(passwords.hasher)
    passwords.hasher = counter  # type: ignore[assignment]
    results, callers = run_in_threads(passwords, stored)
    assert results == [True] * 6
    assert 1 <= counter.peak <= limit
    assert 1 <= len(counter.threads) <= limit
    assert not counter.threads & set(callers)
    assert all(thread.name.startswith("varco-argon2id") for thread in counter.threads)


def run_with_deadline(call, seconds: float = 10.0):  # type: ignore[no-untyped-def]
    """`call()` in a thread of its own; fails the test if it has not returned in `seconds`."""
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, "the call is still waiting for a hashing thread"
    return outcome[0]


def test_a_wrong_password_or_a_broken_hash_leaves_the_hashing_thread_free():
    passwords = Passwords(PasswordSettings(concurrent_hashes=1))
    stored = passwords.hash("Correct-Horse-9")
    assert run_with_deadline(lambda: passwords.verify(stored, "Wrong-Horse-1")) is False
    assert run_with_deadline(lambda: passwords.verify("not-a-hash", "Correct-Horse-9")) is False
    assert run_with_deadline(lambda: passwords.verify(None, "Correct-Horse-9")) is False
    assert run_with_deadline(lambda: passwords.verify(stored, "Correct-Horse-9")) is True


def test_an_error_raised_on_a_hashing_thread_reaches_the_caller_and_leaves_the_thread_free():
    threads = HashThreads(1)
    raised_on: list[str] = []

    def fail() -> None:
        raised_on.append(threading.current_thread().name)
        raise RuntimeError("argon2id failed")

    with pytest.raises(RuntimeError, match="argon2id failed"):
        threads.run(fail)
    assert raised_on[0].startswith("varco-argon2id")
    assert run_with_deadline(lambda: threads.run(lambda: threading.current_thread().name)) == raised_on[0]


def test_a_process_forked_after_a_hash_hashes_on_threads_of_its_own():
    # gunicorn --preload forks workers from a process that may have hashed already: the hashing
    # thread is not copied into the child, which must not wait for it.
    passwords = Passwords(PasswordSettings(concurrent_hashes=1))
    stored = passwords.hash("Correct-Horse-9")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            code = 0 if run_with_deadline(lambda: passwords.verify(stored, "Correct-Horse-9")) is True else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert passwords.verify(stored, "Correct-Horse-9") is True
