"""The OpenID Provider object: Varco's services plus Authlib's authorization server, built once
per app and kept in `app.extensions["varco_oidc"]`."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app

from idp.oidc.claims import SubjectIds, released_claims
from idp.oidc.clients import ClientRegistry
from idp.oidc.signing import JoseKeys
from idp.oidc.tokens import TokenService

PATHS = {
    "authorization": "/oidc/authorize",
    "token": "/oidc/token",
    "userinfo": "/oidc/userinfo",
    "jwks": "/oidc/jwks",
    "revocation": "/oidc/revoke",
    "introspection": "/oidc/introspect",
    "end_session": "/oidc/logout",
    "device_authorization": "/oidc/device_authorization",
    "pushed_authorization_request": "/oidc/par",
    "device_verification": "/device",
}


class OpenIDProvider:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.settings = services.settings
        self.issuer = services.settings.server.issuer.rstrip("/")
        self.ephemeral = services.ephemeral
        self.clients = ClientRegistry(services.db)
        self.subjects = SubjectIds(services.keys.derive(b"varco oidc pairwise subject"))
        self.keys = JoseKeys(services.keys)
        self.tokens = TokenService(services, self.issuer, self.subjects, self.keys)
        self._sid_key = services.keys.derive(b"varco oidc session id")
        from idp.oidc.logout import BackchannelLogout
        from idp.oidc.server import build_authorization_server

        self.backchannel = BackchannelLogout(self)
        self.secure_transport = True  # set by build_authorization_server from the issuer
        self.server = build_authorization_server(self)

    def url(self, name: str) -> str:
        return self.issuer + PATHS[name]

    def sid_for(self, sso_session_id: str | None) -> str | None:
        """The `sid` RPs see: derived from, but never equal to, the SSO cookie value."""
        if not sso_session_id:
            return None
        return hmac.new(self._sid_key, sso_session_id.encode(), hashlib.sha256).hexdigest()[:32]

    def user_claims(self, account_id: str, scope: str, client: Any) -> dict[str, Any]:
        account = self.services.accounts.get(account_id)
        claims = {"sub": self.subjects.sub(account_id, client)}
        if account is not None:
            claims.update(released_claims(account, scope, client, self.settings.organization.scope))
        return claims


def provider() -> OpenIDProvider:
    return current_app.extensions["varco_oidc"]
