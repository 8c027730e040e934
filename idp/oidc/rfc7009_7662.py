"""Token revocation (RFC 7009) and introspection (RFC 7662) on Authlib's endpoints."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from idp.oidc.config import AUTH_METHODS
from idp.oidc.tokens import AccessToken, RefreshToken


def find_token(op: Any, value: str, hint: str | None) -> AccessToken | RefreshToken | None:
    # RFC 7009 2.1: the hint is only a hint; look in the other place too.
    order = ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
    for kind in order:
        if kind == "access_token":
            token = op.tokens.find_access_token(value)
        else:
            token = op.tokens.find_refresh_token(value)
            if token is not None and (token.used or token.is_revoked() or token.is_expired()):
                token = None
        if token is not None:
            return token
    return None


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(self.server.op, token_string, token_type_hint)

    def revoke_token(self, token: Any, request: Any) -> None:
        tokens = self.server.op.tokens
        if isinstance(token, RefreshToken):
            # RFC 7009 2.1: revoking a refresh token also invalidates the access tokens of its grant.
            tokens.revoke_grant(token.grant.id, "refresh token revoked by client")
        else:
            tokens.revoke_access_token(token)


class IntrospectionEndpoint(_IntrospectionEndpoint):
    # RFC 7662 2.1: callers authenticate; public clients cannot introspect.
    CLIENT_AUTH_METHODS = [m for m in AUTH_METHODS if m != "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(self.server.op, token_string, token_type_hint)

    def check_permission(self, token: Any, client: Any, request: Any) -> bool:
        # A client may introspect its own tokens; resource servers are registered with client_credentials.
        return token.check_client(client) or client.check_grant_type("client_credentials")

    def introspect_token(self, token: Any) -> dict[str, Any]:
        op = self.server.op
        client = op.clients.get(token.client_id)
        payload: dict[str, Any] = {
            "active": True,
            "client_id": token.client_id,
            "scope": token.get_scope(),
            "exp": token.expires_at,
            "iss": op.issuer,
            "token_type": "refresh_token" if isinstance(token, RefreshToken) else "Bearer",
        }
        account_id = token.account_id if isinstance(token, RefreshToken) else op.tokens.account_of(token)
        if account_id and client is not None:
            payload["sub"] = op.subjects.sub(account_id, client)
            account = op.services.accounts.get(account_id)
            if account is not None:
                payload["username"] = account.username
        elif isinstance(token, AccessToken):
            payload["sub"] = token.client_id
        return payload
