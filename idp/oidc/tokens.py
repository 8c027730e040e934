"""Issuing, finding and revoking tokens. Every user token belongs to a grant (its family):
revoking the grant revokes every refresh token of it at once, and every access token as soon as
it is next presented (a revocation marker outlives the longest access token).

Opaque access tokens are sealed, not stored: AES-256-GCM over a compact record, under a key
derived for this purpose only. Clients cannot read or forge them, Varco needs no store round trip
to issue one (the hot path of client_credentials), and revocation works through the markers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidGrantError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import update

from idp.oidc.models import OidcGrant, OidcRefreshToken, new_id
from idp.ops.audit import record
from idp.store.models import utcnow

OPAQUE_PREFIX = b"vat1."


class RefreshTokenReused(Exception):
    pass


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class Subject:
    """The person (and the login) a token speaks for; Authlib calls this `user`."""

    account_id: str
    grant_id: str
    sid: str | None = None
    auth_time: int | None = None
    acr: str | None = None
    amr: list[str] = field(default_factory=list)
    new_grant: bool = False
    # The client the tokens are being issued to (set by the token grant).
    client: Any = field(default=None, repr=False)
    # The hash of the refresh token this issuance replaces (refresh_token grant).
    rotates: str | None = None

    def get_user_id(self) -> str:
        return self.account_id


class Expiring:
    """Authlib's TokenMixin parts shared by access and refresh tokens: a scope and an expiry time."""

    scope: str
    expires_at: int

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, self.expires_at - int(time.time()))

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()


@dataclass
class AccessToken(Expiring):
    """An access token found by value: who it is for, for which client, what it allows."""

    client_id: str
    scope: str
    expires_at: int
    account_id: str | None = None
    grant_id: str | None = None
    jti: str | None = None
    kind: str = "access_token"
    extra: dict[str, Any] = field(default_factory=dict)

    # authlib TokenMixin
    def check_client(self, client: Any) -> bool:
        return client.get_client_id() == self.client_id

    def is_revoked(self) -> bool:
        return False


@dataclass
class RefreshToken(Expiring):
    token_hash: str
    grant: OidcGrant
    scope: str
    expires_at: int
    used: bool = False

    def check_client(self, client: Any) -> bool:
        return client.get_client_id() == self.grant.client_id

    def is_revoked(self) -> bool:
        return self.grant.revoked_at is not None

    @property
    def client_id(self) -> str:
        return self.grant.client_id

    @property
    def account_id(self) -> str | None:
        return self.grant.account_id


class TokenService:
    def __init__(self, services: Any, issuer: str, subjects: Any, keys: Any) -> None:
        self.db = services.db
        self.ephemeral = services.ephemeral
        self.keys = keys  # signing.JoseKeys
        self._seal = AESGCM(services.keys.derive(b"varco oidc opaque access token"))
        self.issuer = issuer
        self.subjects = subjects  # claims.SubjectIds: public or pairwise `sub` per client
        self.lifetimes = services.settings.oidc

    # --- issuing --------------------------------------------------------------------------
    def generate(
        self,
        grant_type: str,
        client: Any,
        user: Subject | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Authlib's token generator: issues (and stores) the access and refresh tokens together."""
        scope = scope or ""
        ttl = self.lifetimes.client_credentials_token_seconds if user is None else self.lifetimes.access_token_seconds
        token: dict[str, Any] = {"token_type": "Bearer", "expires_in": ttl, "scope": scope}
        token["access_token"] = self.issue_access_token(client, user, scope, ttl)
        if user is not None:
            refresh = secrets.token_urlsafe(32) if include_refresh_token else None
            self.store_user_tokens(client.client_id, user, scope, refresh)
            if refresh:
                token["refresh_token"] = refresh
        return token

    def store_user_tokens(self, client_id: str, user: Subject, scope: str, refresh: str | None) -> None:
        """One transaction: use up the presented refresh token, record a new grant, store the new
        refresh token. Nothing is handed out unless all of it is durable."""
        try:
            with self.db.session() as session:
                if user.rotates:
                    # RFC 9700 4.14.2: the conditional update lets exactly one request rotate a token.
                    used = session.execute(
                        update(OidcRefreshToken)
                        .where(OidcRefreshToken.token_hash == user.rotates, OidcRefreshToken.used_at.is_(None))
                        .values(used_at=utcnow())
                    )
                    if used.rowcount != 1:
                        raise RefreshTokenReused()
                if user.new_grant:
                    session.add(OidcGrant(
                        id=user.grant_id, client_id=client_id, account_id=user.account_id, scope=scope,
                        sid=user.sid, auth_time=user.auth_time, acr=user.acr, amr=list(user.amr),
                    ))
                    session.flush()
                if refresh:
                    session.add(OidcRefreshToken(
                        token_hash=token_hash(refresh), grant_id=user.grant_id, scope=scope,
                        expires_at=utcnow() + timedelta(days=self.lifetimes.refresh_token_days),
                    ))
        except RefreshTokenReused:
            self.revoke_grant(user.grant_id, "refresh token reused")
            raise InvalidGrantError() from None
        user.new_grant = False

    def issue_access_token(self, client: Any, user: Subject | None, scope: str, ttl: int) -> str:
        now = int(time.time())
        jti = secrets.token_urlsafe(16)
        if client.access_token_format == "jwt":  # noqa: S105
            return self.sign_jwt_access_token(client, user, scope, now, ttl, jti)
        record = {"c": client.client_id, "s": scope, "e": now + ttl, "j": jti}
        if user is not None:
            record.update(a=user.account_id, g=user.grant_id)
        nonce = os.urandom(12)
        sealed = self._seal.encrypt(nonce, json.dumps(record, separators=(",", ":")).encode(), OPAQUE_PREFIX)
        return OPAQUE_PREFIX.decode() + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def _unseal(self, value: str) -> dict[str, Any] | None:
        body = value[len(OPAQUE_PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return json.loads(self._seal.decrypt(raw[:12], raw[12:], OPAQUE_PREFIX))
        except (InvalidTag, ValueError, binascii.Error):
            return None

    def sign_jwt_access_token(
        self, client: Any, user: Subject | None, scope: str, now: int, ttl: int, jti: str
    ) -> str:
        # RFC 9068 2.2: iss, exp, aud, sub, client_id, iat, jti; typ at+jwt (2.1).
        key, jwk = self.keys.active("RSA")
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "exp": now + ttl,
            "iat": now,
            "aud": client.client_id,
            "client_id": client.client_id,
            "jti": jti,
            "scope": scope,
        }
        if user is None:
            claims["sub"] = client.client_id
        else:
            claims["sub"] = self.subjects.sub(user.account_id, client)
            claims["gid"] = user.grant_id
            if user.auth_time:
                claims["auth_time"] = user.auth_time
            if user.acr:
                claims["acr"] = user.acr
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, jwk, algorithms=[key.alg])

    # --- finding --------------------------------------------------------------------------
    def find_access_token(self, value: str) -> AccessToken | None:
        if not value or len(value) > 4096:
            return None
        if value.count(".") == 2:
            token = self._verify_jwt_access_token(value)
        elif value.startswith(OPAQUE_PREFIX.decode()):
            data = self._unseal(value)
            if data is None:
                return None
            token = AccessToken(
                client_id=data["c"],
                scope=data["s"],
                expires_at=data["e"],
                account_id=data.get("a"),
                grant_id=data.get("g"),
                jti=data["j"],
            )
        else:
            return None
        if token is None or token.is_expired() or self.is_revoked(token):
            return None
        return token

    def _verify_jwt_access_token(self, value: str) -> AccessToken | None:
        try:
            decoded = jwt.decode(value, self.keys.verification_set(), algorithms=["RS256"])
        except (JoseError, ValueError):
            return None
        claims = decoded.claims
        if decoded.header.get("typ") != "at+jwt" or claims.get("iss") != self.issuer:
            return None
        return AccessToken(
            client_id=claims["client_id"],
            scope=claims.get("scope", ""),
            expires_at=int(claims["exp"]),
            grant_id=claims.get("gid"),
            jti=claims.get("jti"),
            extra={"sub": claims.get("sub")},
            account_id=None,
        )

    def account_of(self, token: AccessToken) -> str | None:
        if token.account_id or not token.grant_id:
            return token.account_id
        with self.db.session() as session:
            grant = session.get(OidcGrant, token.grant_id)
            return grant.account_id if grant else None

    def is_revoked(self, token: AccessToken) -> bool:
        if token.jti and self.ephemeral.get(f"oidc:revoked-at:{token.jti}") is not None:
            return True
        return bool(token.grant_id and self.ephemeral.get(f"oidc:revoked-grant:{token.grant_id}") is not None)

    def find_refresh_token(self, value: str) -> RefreshToken | None:
        if not value or len(value) > 512:
            return None
        with self.db.session() as session:
            row = session.get(OidcRefreshToken, token_hash(value))
            if row is None:
                return None
            grant = session.get(OidcGrant, row.grant_id)
            expires = int(row.expires_at.timestamp())
            return RefreshToken(row.token_hash, grant, row.scope, expires, used=row.used_at is not None)

    # --- revoking --------------------------------------------------------------------------
    def revoke_grant(self, grant_id: str, reason: str) -> None:
        # The marker first: access tokens stop working even if the database write fails.
        # Kept while any access token of the grant may still be presented.
        longest = max(self.lifetimes.access_token_seconds, self.lifetimes.client_credentials_token_seconds, 3600)
        self.ephemeral.set(f"oidc:revoked-grant:{grant_id}", reason, longest + 60)
        with self.db.session() as session:
            grant = session.get(OidcGrant, grant_id)
            if grant is None or grant.revoked_at is not None:
                return
            grant.revoked_at = utcnow()
            grant.revoked_reason = reason
            record(session, "oidc.grant.revoked", grant.client_id, grant.account_id, {"reason": reason})

    def revoke_access_token(self, token: AccessToken) -> None:
        if token.jti:
            self.ephemeral.set(f"oidc:revoked-at:{token.jti}", "1", token.get_expires_in() + 60)


def new_grant_id() -> str:
    return new_id()
