"""Authlib's authorization server with Varco's grants, extensions and endpoints registered on it."""

from __future__ import annotations

import logging
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Response, request
from flask import json as flask_json

from idp.oidc.config import SCOPES

log = logging.getLogger("varco.oidc")


class StoredAuthorizationRequest(OAuth2Request):
    """An authorization request rebuilt from its validated parameters (after login, consent or PAR)."""

    def __init__(self, uri: str, params: dict[str, str]) -> None:
        super().__init__("GET", uri, headers={})
        self.payload = BasicOAuth2Payload(dict(params))
        self.resumed = True

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        return {}


class PublicUrlRequest(FlaskOAuth2Request):
    """Authlib's Flask request, located at the issuer's public URL: behind a TLS-terminating proxy
    the WSGI URL says http, but transport security is what the issuer (always https in
    production) says: it is checked once, when the provider is built (`issuer_is_secure`), instead
    of parsing the URL of every request."""

    def __init__(self, issuer: str) -> None:
        # The request object itself, not the context-local proxy (looked up on every attribute).
        current = request._get_current_object()  # type: ignore[attr-defined]
        self.method = current.method
        self.uri = issuer + current.path
        self.headers = current.headers
        self._body = None
        self.payload = FlaskOAuth2Payload(current)
        self.client = self.auth_method = self.user = None
        self.authorization_code = self.refresh_token = self.credential = None
        self._scope = None
        self._request = current


def issuer_is_secure(issuer: str) -> bool:
    """OAuth 2.0 needs TLS (RFC 6749 1.6); plain http only on loopback, for development and tests."""
    try:
        InsecureTransportError.check(issuer)
    except InsecureTransportError:
        log.error("server.issuer %s is not https: the OIDC endpoints will refuse every request", issuer)
        return False
    return True


class VarcoAuthorizationServer(AuthorizationServer):
    def __init__(self, op: Any) -> None:
        super().__init__()
        self.op = op
        self.scopes_supported = list(SCOPES)

    def query_client(self, client_id: str) -> Any:
        return self.op.clients.get(client_id)

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        """Authlib's, with RFC 6749 2.3's rule that a client uses one authentication method per
        request: Authlib takes the first method that succeeds and ignores the others, even when
        they name another client or carry a wrong secret. Its invalid_client description (the
        methods as a Python list) is replaced by the plain one RFC 6749 5.2 suggests."""
        form = request.form
        authorization = request.headers.get("Authorization") or ""
        basic = authorization[:6].lower() == "basic "
        used = [
            method
            for method, present in (
                ("client_secret_basic", basic),
                ("client_secret_post", "client_secret" in form),
                ("private_key_jwt", "client_assertion" in form or "client_assertion_type" in form),
            )
            if present
        ]
        if len(used) > 1:
            raise InvalidRequestError(f"one client authentication method per request, not {' and '.join(used)}")
        if basic and "client_id" in form and extract_basic_authorization(request.headers)[0] != form["client_id"]:
            raise InvalidRequestError("client_id does not match the client's credentials")
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.description = "client authentication failed: unknown client, wrong credentials or method"
            raise

    def save_token(self, token: dict, request: Any) -> None:
        pass  # the token generator stores what it issues (tokens.TokenService.generate)

    def create_oauth2_request(self, oauth_request: Any) -> OAuth2Request:
        if isinstance(oauth_request, OAuth2Request):
            return oauth_request
        return PublicUrlRequest(self.op.issuer)

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Response:
        if isinstance(payload, dict):
            payload = flask_json.dumps(payload)
        response = Response(payload, status=status_code, headers=headers)
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"  # RFC 6749 5.1
        return response

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class Issuer(IssuerParameter):
    """RFC 9207: `iss` in every authorization response."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


def build_authorization_server(op: Any) -> VarcoAuthorizationServer:
    from idp.oidc.device import DeviceAuthorizationEndpoint, DeviceCodeGrant
    from idp.oidc.grants import (
        AuthorizationCodeGrant,
        ClientCredentialsGrant,
        OpenIDCodeExtension,
        RefreshedIdToken,
        RefreshTokenGrant,
        S256CodeChallenge,
    )
    from idp.oidc.rfc7009_7662 import IntrospectionEndpoint, RevocationEndpoint
    from idp.oidc.rfc7523 import PrivateKeyJwt

    op.secure_transport = issuer_is_secure(op.issuer)
    server = VarcoAuthorizationServer(op)
    server.register_token_generator("default", op.tokens.generate)
    server.register_client_auth_method("private_key_jwt", PrivateKeyJwt(op))
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCodeExtension(op)])
    server.register_grant(RefreshTokenGrant, [RefreshedIdToken(op)])
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(DeviceCodeGrant)
    server.register_endpoint(DeviceAuthorizationEndpoint)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_extension(Issuer(op.issuer))
    return server
