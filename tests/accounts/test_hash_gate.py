"""argon2id runs at most `passwords.concurrent_hashes` at a time per process; other threads wait."""

from __future__ import annotations

import threading

import pytest

from idp.accounts.passwords import Passwords
from idp.settings import PasswordSettings


class CountingHasher:
    """The real argon2 hasher, counting how many of its calls run at the same moment."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real = real
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def _track(self, call, *args):  # type: ignore[no-untyped-def]
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return call(*args)
        finally:
            with self.lock:
                self.running -= 1

    def verify(self, stored: str, password: str) -> bool:
        return self._track(self.real.verify, stored, password)

    def hash(self, password: str) -> str:
        return self._track(self.real.hash, password)


def run_in_threads(passwords: Passwords, stored: str, threads: int = 6) -> list[bool]:
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
    return results


@pytest.mark.parametrize("limit", [1, 2])
def test_no_more_hashes_at_once_than_the_setting_allows(limit):
    passwords = Passwords(PasswordSettings(concurrent_hashes=limit))
    stored = passwords.hash("Correct-Horse-9")
    counter = CountingHasher(passwords.hasher)
    passwords.hasher = counter  # type: ignore[assignment]
    assert run_in_threads(passwords, stored) == [True] * 6
    assert 1 <= counter.peak <= limit


def test_a_wrong_password_releases_the_gate():
    passwords = Passwords(PasswordSettings(concurrent_hashes=1))
    stored = passwords.hash("Correct-Horse-9")
    assert passwords.verify(stored, "Wrong-Horse-1") is False
    assert passwords.verify("not-a-hash", "Correct-Horse-9") is False
    # Free again at once (a gate left held would make every later login wait forever).
    assert passwords._gate.acquire(timeout=1)
    passwords._gate.release()
    assert passwords.verify(stored, "Correct-Horse-9") is True
