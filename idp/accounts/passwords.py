"""Password hashing (argon2id, argon2-cffi) and the NIST SP 800-63B 3.1.1.2 choice rules."""

from __future__ import annotations

import secrets
import string
import threading
import unicodedata
from pathlib import Path

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
        # Hashes beyond one per core don't finish sooner, they thrash the cache and hold memory:
        # the other request threads queue here and keep serving pages meanwhile.
        self._gate = threading.BoundedSemaphore(settings.concurrent_hashes)

    def hash(self, password: str) -> str:
        prepared = _prepare(password)
        with self._gate:
            return self.hasher.hash(prepared)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        prepared = _prepare(password)
        try:
            with self._gate:
                return self.hasher.verify(stored_hash or self._dummy_hash, prepared) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

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


def generate_temporary_password(length: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    alphabet = "".join(ch for ch in alphabet if ch not in "0O1lI")
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _prepare(password: str) -> str:
    # NIST SP 800-63B 5.1.1.2: apply Unicode normalisation (NFKC) before hashing.
    return unicodedata.normalize("NFKC", password)
