"""SSO sessions: one per browser login, kept in the ephemeral store under a hash of the cookie value."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, fields

from idp.settings import SessionSettings
from idp.store.ephemeral import Ephemeral, Op

SSO_COOKIE = "varco_sso"


@dataclass(frozen=True)
class SsoSession:
    id: str
    account_id: str
    amr: tuple[str, ...]
    acr: str
    auth_time: int
    remember: bool
    expires_at: int
    # When a second factor was last given in this session (None: never).
    mfa_at: int | None = None


STORED_FIELDS = tuple(field.name for field in fields(SsoSession) if field.name != "id")


class SsoSessions:
    def __init__(self, ephemeral: Ephemeral, settings: SessionSettings) -> None:
        self.ephemeral = ephemeral
        self.settings = settings

    @staticmethod
    def _key(sid: str) -> str:
        # The store holds a hash: a copy of it does not hand out usable session cookies.
        return "sso:" + hashlib.sha256(sid.encode()).hexdigest()

    def lifetime(self, remember: bool) -> int:
        return self.settings.remember_days * 86400 if remember else self.settings.lifetime_minutes * 60

    def new(
        self,
        account_id: str,
        amr: tuple[str, ...],
        acr: str,
        auth_time: int,
        remember: bool,
        mfa_at: int | None = None,
    ) -> SsoSession:
        """A session with a new id (never one the browser had: OWASP ASVS 3.2.1), not stored yet:
        `storing` is the write that stores it."""
        sid, expires_at = secrets.token_urlsafe(32), int(time.time()) + self.lifetime(remember)
        return SsoSession(sid, account_id, tuple(amr), acr, auth_time, remember, expires_at, mfa_at)

    def storing(self, session: SsoSession) -> Op:
        # Every field but the id (the store is keyed by its hash); what `get` reads back.
        data = {name: getattr(session, name) for name in STORED_FIELDS}
        return ("set", self._key(session.id), json.dumps(data), self.lifetime(session.remember))

    def get(self, sid: str | None) -> SsoSession | None:
        if not sid or len(sid) > 128:
            return None
        raw = self.ephemeral.get(self._key(sid))
        if raw is None:
            return None
        data = json.loads(raw)
        data["amr"] = tuple(data["amr"])
        return SsoSession(id=sid, **data)

    def end(self, sid: str | None) -> list[dict]:
        """End the session; returns the relying services that took part, for logout propagation."""
        if not sid or len(sid) > 128:
            return []
        found = self.participants(sid)
        self.ephemeral.delete(self._key(sid))
        self.ephemeral.delete(self._key(sid) + ":rp")
        return found

    def add_participant(self, sid: str, protocol: str, relying_party: str, details: dict | None = None) -> None:
        """Remember that `relying_party` received an identity from this session (SLO, back-channel logout).

        Read-modify-write: two responses for the same session at the same instant may lose one entry."""
        key = (protocol, relying_party)
        entries = [p for p in self.participants(sid) if (p["protocol"], p["relying_party"]) != key]
        entries.append({"protocol": protocol, "relying_party": relying_party, "details": details or {}})
        ttl = max(1, self.lifetime(True))
        self.ephemeral.set(self._key(sid) + ":rp", json.dumps(entries), ttl)

    def participants(self, sid: str) -> list[dict]:
        raw = self.ephemeral.get(self._key(sid) + ":rp")
        return json.loads(raw) if raw else []


def current_sso_session() -> SsoSession | None:
    """The SSO session of the browser making the current request, if it is still live."""
    from flask import request

    from idp.web import services

    return services().sessions.get(request.cookies.get(SSO_COOKIE))
