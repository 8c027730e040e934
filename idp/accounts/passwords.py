"""Password hashing (argon2id, argon2-cffi) and the NIST SP 800-63B 3.1.1.2 choice rules."""

from __future__ import annotations

import os
import secrets
import string
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.settings import PasswordSettings

COMMON_PASSWORDS = frozenset(
    line.strip().casefold()
    for line in (Path(__file__).parent / "data" / "common-passwords.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
)


class PasswordRejected(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Passwords:
    def __init__(self, settings: PasswordSettings) -> None:
        self.settings = settings
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verifying against this costs what a real account costs, so unknown users and wrong
        # passwords cannot be told apart by timing.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._threads = HashThreads(settings.concurrent_hashes)

    def hash(self, password: str) -> str:
        return self._threads.run(self.hasher.hash, _prepare(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        prepared = _prepare(password)
        try:
            verified = self._threads.run(self.hasher.verify, stored_hash or self._dummy_hash, prepared)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return verified and stored_hash is not None

    def burn(self, password: str) -> None:
        """Spend one verification on the dummy hash (unknown user)."""
        self.verify(None, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)

    def check_choice(self, password: str, *, context: tuple[str, ...] = ()) -> None:
        """Length, a list of common passwords, and the account's own identifiers; no composition rules."""
        prepared = _prepare(password)
        if len(prepared) < self.settings.min_length:
            raise PasswordRejected("too_short")
        if len(prepared) > self.settings.max_length:
            raise PasswordRejected("too_long")
        folded = prepared.casefold()
        if folded in COMMON_PASSWORDS or len(set(folded)) < 3:
            raise PasswordRejected("too_common")
        if any(item and len(item) >= 4 and item.casefold() in folded for item in context):
            raise PasswordRejected("contains_identifier")


class HashThreads:
    """The threads argon2id runs on: `count` long-lived threads in each process; a caller waits
    for one of them, and other request threads keep serving pages meanwhile.

    Hashes beyond one per core don't finish sooner: they evict each other from the processor's
    cache and each holds argon2_memory_kib, so a burst of logins queues here instead. Running
    every hash on the same few threads also keeps its memory where the last hash left it, in
    the processor's cache: glibc's malloc gives each thread an arena of its own, so a hash run on
    whichever request thread serves the login gets a different 19 MiB block each time, one no
    longer cached (bench/login.py measured about 2% of the login rate).

    The pool is made on first use in each process, so a process forked after a hash (gunicorn
    with --preload, a test) starts its own threads instead of waiting on its parent's."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` on one of the hashing threads; its result, or what it raised."""
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            pool = self._start()
        return pool.submit(function, *args).result()

    def _start(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="varco-argon2id")
                self._pid = os.getpid()
            return self._pool


def generate_temporary_password(length: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    alphabet = "".join(ch for ch in alphabet if ch not in "0O1lI")
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _prepare(password: str) -> str:
    # NIST SP 800-63B 5.1.1.2: apply Unicode normalisation (NFKC) before hashing.
    return unicodedata.normalize("NFKC", password)
