"""Signing keys as JOSE objects, imported once per process: parsing (and validating) an RSA private
key costs tens of milliseconds, far more than signing with it."""

from __future__ import annotations

import threading
from typing import Any

from joserfc.jwk import KeySet


class JoseKeys:
    def __init__(self, keyring: Any) -> None:
        self.keyring = keyring
        self._imported: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _jwk(self, key: Any) -> Any:
        imported = self._imported.get(key.kid)
        if imported is None:
            with self._lock:
                imported = self._imported.setdefault(key.kid, key.jwk())
        return imported

    def active(self, kind: str) -> tuple[Any, Any]:
        """The active SigningKey of that kind ("RSA" or "EC") and its joserfc key."""
        key = self.keyring.active(kind)
        return key, self._jwk(key)

    def for_alg(self, alg: str) -> tuple[Any, Any]:
        return self.active("EC" if alg == "ES256" else "RSA")

    def verification_set(self) -> KeySet:
        """Every published key (active and retired but still published), for our own tokens."""
        return KeySet([self._jwk(key) for key in self.keyring.signing])

    def public_jwks(self) -> dict[str, list[dict]]:
        return {"keys": [self._jwk(key).as_dict(private=False) for key in self.keyring.signing]}
