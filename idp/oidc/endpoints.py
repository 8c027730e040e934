"""The back-channel endpoints: discovery, JWKS, token, userinfo, revocation, introspection,
device authorization and pushed authorization requests. Each is a short list of named checks
followed by Authlib's endpoint."""

from __future__ import annotations

import json
import secrets
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, OAuth2Error
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from idp.oidc.checks import require_form_post
from idp.oidc.config import ACR_VALUES, ASSERTION_ALGS, AUTH_METHODS, GRANT_TYPES, PAR_TTL, SCOPE_CLAIMS, SCOPES
from idp.oidc.provider import provider

bp = Blueprint("oidc_api", __name__)

# Browser-based public clients call these from their own origin. No cookie is ever read here
# (credentials travel in the request), so any origin may: no ambient authority is exposed.
CORS_PATHS = {
    "/.well-known/openid-configuration", "/oidc/jwks", "/oidc/token", "/oidc/userinfo", "/oidc/revoke",
    "/oidc/device_authorization",
}


@bp.after_request
def allow_cross_origin(response: Response) -> Response:
    if request.path in CORS_PATHS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, DPoP"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


def oauth_error(error: OAuth2Error) -> Response:
    return provider().server.handle_error_response(None, error)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    # Oversized bodies (413), bad methods (405) and the like still get an OAuth error (RFC 6749 5.2).
    response = jsonify(error="invalid_request", error_description=exc.name)
    response.status_code = exc.code or 400
    response.headers["Cache-Control"] = "no-store"
    if getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response


# A method no route takes (405) is raised before any blueprint is chosen: the app's error handler
# sends these paths here (idp/errors.py), so they too answer in JSON.
API_PATHS = frozenset({
    "/.well-known/openid-configuration", "/oidc/jwks", "/oidc/token", "/oidc/revoke", "/oidc/introspect",
    "/oidc/device_authorization", "/oidc/par", "/oidc/userinfo",
})


@bp.route("/.well-known/openid-configuration")
def discovery() -> Response:
    op = provider()
    response = jsonify(
        {
            "issuer": op.issuer,
            "authorization_endpoint": op.url("authorization"),
            "token_endpoint": op.url("token"),
            "userinfo_endpoint": op.url("userinfo"),
            "jwks_uri": op.url("jwks"),
            "revocation_endpoint": op.url("revocation"),
            "introspection_endpoint": op.url("introspection"),
            "end_session_endpoint": op.url("end_session"),
            "device_authorization_endpoint": op.url("device_authorization"),
            "pushed_authorization_request_endpoint": op.url("pushed_authorization_request"),
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANT_TYPES),
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "userinfo_signing_alg_values_supported": [],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_methods_supported": [m for m in AUTH_METHODS if m != "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": sorted({c for claims in SCOPE_CLAIMS.values() for c in claims}
                                       | {"iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid"}),
            "acr_values_supported": list(ACR_VALUES),
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "require_pushed_authorization_requests": False,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
            "ui_locales_supported": list(op.settings.i18n.locales),
        }
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/oidc/jwks")
def jwks() -> Response:
    response = jsonify(provider().keys.public_jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/oidc/token", methods=["GET", "POST"])
def token() -> Response:
    try:
        require_form_post()
    except OAuth2Error as error:
        return oauth_error(error)
    return provider().server.create_token_response()


@bp.route("/oidc/revoke", methods=["GET", "POST"])
def revoke() -> Response:
    try:
        require_form_post()
    except OAuth2Error as error:
        return oauth_error(error)
    return provider().server.create_endpoint_response("revocation")


@bp.route("/oidc/introspect", methods=["GET", "POST"])
def introspect() -> Response:
    try:
        require_form_post()
    except OAuth2Error as error:
        return oauth_error(error)
    return provider().server.create_endpoint_response("introspection")


@bp.route("/oidc/device_authorization", methods=["GET", "POST"])
def device_authorization() -> Response:
    try:
        require_form_post()
    except OAuth2Error as error:
        return oauth_error(error)
    return provider().server.create_endpoint_response("device_authorization")


@bp.route("/oidc/par", methods=["GET", "POST"])
def pushed_authorization_request() -> Response:
    """RFC 9126: the client pushes its authorization request and gets a one-time request_uri."""
    op = provider()
    try:
        require_form_post()
        client = authenticate_par_client()
        params = request.form.to_dict()
        params.pop("client_secret", None)
        params.pop("client_assertion", None)
        params.pop("client_assertion_type", None)
        if "request_uri" in params:
            raise InvalidRequestError("request_uri is not allowed in a pushed request")  # RFC 9126 2.1
        if params.get("client_id", client.client_id) != client.client_id:
            raise InvalidRequestError("client_id does not match the authenticated client")
        params["client_id"] = client.client_id
        from idp.oidc.authorize import validate_authorization_params

        validate_authorization_params(params)
    except OAuth2Error as error:
        error.redirect_uri = None  # RFC 9126 2.3: errors are JSON responses, never redirects
        error.state = None
        return oauth_error(error)
    request_uri = "urn:ietf:params:oauth:request_uri:" + secrets.token_urlsafe(24)
    op.ephemeral.set(f"oidc:par:{request_uri}", json.dumps(params), PAR_TTL)
    response = jsonify(request_uri=request_uri, expires_in=PAR_TTL)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def authenticate_par_client() -> Any:
    server = provider().server
    oauth_request = server.create_oauth2_request(None)
    client = server.authenticate_client(oauth_request, list(AUTH_METHODS), "pushed_authorization_request")
    if client is None:
        raise InvalidClientError()
    return client


@bp.route("/oidc/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC Core 5.3: the claims of the granted scopes, for a bearer token with `openid`."""
    op = provider()
    value = bearer_token()
    token = op.tokens.find_access_token(value) if value else None
    if token is None:
        return bearer_error("invalid_token", "the access token is invalid, expired or revoked")
    if "openid" not in token.scope.split():
        return bearer_error("insufficient_scope", "the token was not granted the openid scope", 403)
    account_id = op.tokens.account_of(token)
    client = op.clients.get(token.client_id)
    account = op.services.accounts.get(account_id) if account_id else None
    if account_id is None or client is None or account is None or account.status != "active":
        return bearer_error("invalid_token", "the token's subject or client no longer exists")
    response = jsonify(op.user_claims(account_id, token.scope, client))
    response.headers["Cache-Control"] = "no-store"
    return response


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip() or len(value) > 4096:
        return None
    return value.strip()


def bearer_error(error: str, description: str, status: int = 401) -> Response:
    # RFC 6750 3
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}", error_description="{description}"'
    response.headers["Cache-Control"] = "no-store"
    return response
