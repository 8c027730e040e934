"""Authlib grants and extensions as Varco registers them: only the storage hooks and the stricter
checks Varco adds are written here; the protocol logic stays Authlib's."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, OpenIDToken

from idp.oidc.config import AUTH_METHODS, CODE_TTL, USED_CODE_MEMORY
from idp.oidc.tokens import Subject, new_grant_id, token_hash

CONFIDENTIAL_METHODS = [m for m in AUTH_METHODS if m != "none"]


@dataclass
class AuthorizationCode:
    """A redeemed code's record (ephemeral, 60 s): bound to client, redirect URI and PKCE challenge."""

    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    subject: dict[str, Any]

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int | None:
        return self.subject.get("auth_time")

    def get_acr(self) -> str | None:
        return self.subject.get("acr")

    def get_amr(self) -> list[str] | None:
        return self.subject.get("amr") or None


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def save_authorization_code(self, code: str, request: Any) -> None:
        subject: Subject = request.user
        data = request.payload.data
        record = {
            "client_id": request.client.client_id,
            "redirect_uri": request.payload.redirect_uri,
            "scope": request.scope,
            "nonce": data.get("nonce"),
            "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method"),
            "subject": {
                "account_id": subject.account_id,
                "grant_id": new_grant_id(),
                "sid": subject.sid,
                "auth_time": subject.auth_time,
                "acr": subject.acr,
                "amr": list(subject.amr),
            },
        }
        self.server.op.ephemeral.set(f"oidc:code:{token_hash(code)}", json.dumps(record), CODE_TTL)

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        op = self.server.op
        if len(code) > 256:
            return None
        hashed = token_hash(code)
        raw = op.ephemeral.take(f"oidc:code:{hashed}")
        if raw is None:
            check_code_reuse(op, hashed)
            return None
        record = AuthorizationCode(**json.loads(raw))
        # Remember the code was redeemed, so a second use revokes what the first one got.
        op.ephemeral.set(f"oidc:code-used:{hashed}", record.subject["grant_id"], USED_CODE_MEMORY)
        if record.client_id != client.client_id:
            return None  # RFC 6749 4.1.3: the code is bound to the client it was issued to
        return record

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        pass  # taken (deleted) atomically when it was looked up

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Subject | None:
        subject = Subject(**authorization_code.subject, new_grant=True, client=self.request.client)
        account = self.server.op.services.accounts.get(subject.account_id)
        if account is None or account.status != "active":
            return None
        return subject


def check_code_reuse(op: Any, hashed: str) -> None:
    # RFC 6749 4.1.2 / RFC 9700 4.5.3: a code used twice revokes every token issued from it.
    grant_id = op.ephemeral.get(f"oidc:code-used:{hashed}")
    if grant_id:
        op.tokens.revoke_grant(grant_id, "authorization code reused")


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only (RFC 9700 2.1.1), required of public clients and, by default, of all."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        method = data.get("code_challenge_method")
        client = grant.request.client
        if not challenge and (client.public or client.require_pkce):
            raise InvalidRequestError("code_challenge is required (PKCE with S256)")
        if challenge and method != "S256":
            # RFC 9700 2.1.1: 'plain' (also the default when the method is absent) is refused.
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        code = grant.request.authorization_code
        if not code.code_challenge and grant.request.client.require_pkce:
            raise InvalidGrantError("code was issued without PKCE")
        super().validate_code_verifier(grant, result)


class IdTokens:
    """How Varco signs ID tokens and what they say, for every grant that issues one."""

    def __init__(self, op: Any) -> None:
        self.op = op

    def resolve_client_private_key(self, client: Any) -> Any:
        return self.op.keys.for_alg(client.id_token_signed_response_alg)[1]

    def get_client_algorithm(self, client: Any) -> str:
        return client.id_token_signed_response_alg

    def get_encode_header(self, client: Any) -> dict[str, str]:
        key, _ = self.op.keys.for_alg(client.id_token_signed_response_alg)
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        lifetime = self.op.settings.oidc.id_token_seconds
        return {"iss": self.op.issuer, "aud": client.client_id, "iat": now, "exp": now + lifetime}

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        claims = self.op.user_claims(user.account_id, scope, user.client)
        if user.sid:
            claims["sid"] = user.sid
        return claims


class OpenIDCodeExtension(IdTokens, OpenIDCode):
    """ID tokens (OIDC Core 3.1.3.6): signed with the client's alg, with auth_time, acr, amr, sid."""

    def __init__(self, op: Any) -> None:
        OpenIDCode.__init__(self, require_nonce=False)
        IdTokens.__init__(self, op)

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # The nonce binds the ID token to the RP's session; detecting its replay is the RP's check
        # (OIDC Core 15.5.2). Requests are also validated again after login, so no replay cache here.
        return False


class RefreshedIdToken(IdTokens, OpenIDToken):
    """OIDC Core 12.2: a refresh of an `openid` grant returns a new ID token for the same login:
    same iss, sub, aud and sid, a new iat and exp, the original auth_time, acr and amr, no nonce."""

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        claims = super().generate_user_info(user, scope)
        if user.auth_time:
            claims["auth_time"] = user.auth_time
        if user.acr:
            claims["acr"] = user.acr
        if user.amr:
            claims["amr"] = list(user.amr)
        return claims


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotating refresh tokens (RFC 9700 4.14.2): each is used once; reuse revokes the whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Any:
        op = self.server.op
        token = op.tokens.find_refresh_token(refresh_token)
        if token is None or token.is_revoked() or token.is_expired():
            return None
        if token.used:
            # RFC 9700 4.14.2: a used refresh token presented again revokes the whole family.
            op.tokens.revoke_grant(token.grant.id, "refresh token reused")
            return None
        account = op.services.accounts.get(token.grant.account_id)
        if account is None or account.status != "active":
            return None  # invalid_grant: the person can no longer be represented
        return token

    def authenticate_user(self, refresh_token: Any) -> Subject | None:
        grant = refresh_token.grant
        return Subject(
            account_id=grant.account_id,
            grant_id=grant.id,
            sid=grant.sid,
            auth_time=grant.auth_time,
            acr=grant.acr,
            amr=list(grant.amr or []),
            rotates=refresh_token.token_hash,  # used up atomically with the new token's issuance
            client=self.request.client,
        )

    def revoke_old_credential(self, refresh_token: Any) -> None:
        pass  # used up in the same transaction that stored its successor (TokenService)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client = self.request.client
        if client.public:
            raise UnauthorizedClientError("public clients cannot use client_credentials")
        requested = set((self.request.payload.scope or "").split())
        if not requested <= set(client.scopes) or "openid" in requested:
            # RFC 6749 3.3; no ID token or user claims without a user.
            raise InvalidScopeError()
