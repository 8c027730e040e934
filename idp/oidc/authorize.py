"""The authorization endpoint (OIDC Core 3.1.2): a pipeline of named checks, then either a code,
a trip through the login flow, or the consent page. Errors go back to the client only once its
redirect URI is known to be registered (RFC 6749 4.1.2.1); otherwise the person sees a page."""

from __future__ import annotations

import json
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidClientError, InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Blueprint, Response, redirect, render_template, request
from flask.typing import ResponseReturnValue

from idp.flow import AuthnResult, LoginRequest
from idp.flow.frontend import LoginRequired, begin_login, resume_login
from idp.oidc.checks import check_query_parameters
from idp.oidc.config import ACR_MFA
from idp.oidc.consent import consent_covers, start_consent
from idp.oidc.provider import provider
from idp.oidc.server import StoredAuthorizationRequest
from idp.oidc.tokens import Subject
from idp.web import services

bp = Blueprint("oidc_authorize", __name__, template_folder="templates")

PROMPTS = {"none", "login", "consent", "select_account"}
UNSUPPORTED = {"request": "request_not_supported", "registration": "registration_not_supported"}


class AuthorizationError(OAuth2Error):
    """An OIDC error code Authlib has no class for (OIDC Core 3.1.2.6)."""

    def __init__(self, error: str, description: str, redirect_uri: str | None = None) -> None:
        super().__init__(description=description, redirect_uri=redirect_uri)
        self.error = error


@bp.route("/oidc/authorize", methods=["GET", "POST"])
def authorize() -> ResponseReturnValue:
    trusted = trusted_redirect_uri(request.values)
    state = request.values.get("state") if len(request.values.getlist("state")) == 1 else None
    try:
        check_query_parameters()
        params = resolve_pushed_request(request.values.to_dict())
        state = params.get("state")
        client, redirect_uri = validate_authorization_params(params)
    except OAuth2Error as error:
        if error.redirect_uri is None and trusted is not None and not isinstance(error, InvalidRedirect):
            error.redirect_uri = trusted
        return error_response(error, state)
    try:
        return continue_authorization(params, client, redirect_uri)
    except OAuth2Error as error:
        error.redirect_uri = error.redirect_uri or redirect_uri
        return error_response(error, params.get("state"))


@bp.route("/oidc/authorize/resume")
def resume() -> ResponseReturnValue:
    """Back from the login flow: the flow's result, once, for the browser that ran it."""
    taken = resume_login(request.args.get("flow"))
    if taken is None:
        return error_page(AuthorizationError("login_expired", "The login took too long or was already used."))
    login_request, result = taken
    params = login_request.protocol_state.get("params") or {}
    try:
        client, redirect_uri = validate_authorization_params(params)
    except OAuth2Error as error:
        return error_response(error, params.get("state"))
    try:
        if client.require_mfa and result.acr != ACR_MFA:
            raise AccessDeniedError("this service requires two-factor authentication")
        return continue_authorization(params, client, redirect_uri, result=result)
    except OAuth2Error as error:
        error.redirect_uri = error.redirect_uri or redirect_uri
        return error_response(error, params.get("state"))


# --- checks ---------------------------------------------------------------------------------
class InvalidRedirect(InvalidRequestError):
    pass


def trusted_redirect_uri(values: Any) -> str | None:
    """The redirect URI, only if it is given once and registered exactly for a known client."""
    if len(values.getlist("client_id")) != 1 or len(values.getlist("redirect_uri")) != 1:
        return None
    client = provider().clients.get(values.get("client_id"))
    uri = values.get("redirect_uri")
    return uri if client is not None and client.check_redirect_uri(uri) else None


def resolve_pushed_request(params: dict[str, str]) -> dict[str, str]:
    """RFC 9126 4: a request_uri from the PAR endpoint stands for the pushed parameters, once."""
    request_uri = params.get("request_uri")
    if request_uri is None:
        return params
    if not request_uri.startswith("urn:ietf:params:oauth:request_uri:"):
        raise AuthorizationError("request_uri_not_supported", "only request_uri values from the PAR endpoint")
    raw = provider().ephemeral.take(f"oidc:par:{request_uri}")
    if raw is None:
        raise InvalidRequestError("request_uri is unknown, expired or used")
    pushed = json.loads(raw)
    if params.get("client_id") != pushed["client_id"]:
        raise InvalidRequestError("client_id does not match the pushed request")
    return pushed


def validate_authorization_params(params: dict[str, str]) -> tuple[Any, str]:
    """Authlib's code-grant validation (client, redirect URI, response type, scope, PKCE, nonce),
    then Varco's own checks on the OIDC parameters. Returns the client and its redirect URI."""
    server = provider().server
    oauth_request = StoredAuthorizationRequest(provider().url("authorization"), params)
    redirect_uri = check_client_and_redirect_uri(params)
    if params.get("response_type") != "code":
        raise AuthorizationError("unsupported_response_type", "only response_type=code", redirect_uri)
    grant = server.get_authorization_grant(oauth_request)
    redirect_uri = grant.validate_authorization_request()
    client = oauth_request.client
    for check in (check_unsupported_parameters, check_response_mode, check_prompt, check_max_age, check_openid):
        try:
            check(params)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
    return client, redirect_uri


def check_client_and_redirect_uri(params: dict[str, str]) -> str:
    """Before anything may go back to the client: it exists and the redirect URI is one it
    registered, compared as exact strings (OIDC Core 3.1.2.1, RFC 9700 2.1)."""
    client = provider().clients.get(params.get("client_id"))
    if client is None:
        raise InvalidClientError(description="unknown client_id")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise InvalidRedirect("redirect_uri is required")
    if not client.check_redirect_uri(redirect_uri):
        raise InvalidRedirect("redirect_uri is not registered for this client")
    return redirect_uri


def check_unsupported_parameters(params: dict[str, str]) -> None:
    for name, error in UNSUPPORTED.items():
        if name in params:
            raise AuthorizationError(error, f"the {name} parameter is not supported")  # OIDC Core 6


def check_response_mode(params: dict[str, str]) -> None:
    if params.get("response_mode", "query") != "query":
        raise InvalidRequestError("only response_mode=query is supported")


def check_prompt(params: dict[str, str]) -> None:
    prompts = params.get("prompt", "").split()
    if not set(prompts) <= PROMPTS:
        raise InvalidRequestError("unknown prompt value")
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined")  # OIDC Core 3.1.2.1


def check_max_age(params: dict[str, str]) -> None:
    value = params.get("max_age")
    if value is not None and (not value.isdigit() or len(value) > 9):
        raise InvalidRequestError("max_age must be a non-negative whole number of seconds")


def check_openid(params: dict[str, str]) -> None:
    if "openid" not in params.get("scope", "").split():
        raise AuthorizationError("invalid_scope", "the openid scope is required")


# --- deciding: code, login or consent -------------------------------------------------------
def continue_authorization(
    params: dict[str, str], client: Any, redirect_uri: str, result: AuthnResult | None = None
) -> ResponseReturnValue:
    """The SSO session (or the login just finished) either satisfies the request or the person
    logs in; then consent when needed; then the code."""
    prompts = set(params.get("prompt", "").split())
    if result is None:
        try:
            outcome = begin_login(login_request(params, client))
        except LoginRequired as exc:
            raise LoginRequiredError(description=exc.reason.replace("_", " ")) from None  # OIDC Core 3.1.2.6
        if not isinstance(outcome, AuthnResult):
            return outcome  # into the login flow; back at /oidc/authorize/resume
        result = outcome
    subject = subject_of(result)
    scopes = client.get_allowed_scope(params.get("scope")).split()
    if not consent_covers(client, subject.account_id, scopes, prompts):
        if "none" in prompts:
            raise ConsentRequiredError()
        return start_consent(params, client, subject, scopes, result.session_id)
    return issue_code(params, subject, result.session_id)


def login_request(params: dict[str, str], client: Any) -> LoginRequest:
    """The protocol-neutral request (ARCHITECTURE.md point 1), OIDC Core 3.1.2.1 parameters mapped."""
    prompts = set(params.get("prompt", "").split())
    max_age = params.get("max_age")
    return LoginRequest(
        return_to="/oidc/authorize/resume",
        protocol="oidc",
        relying_party=client.client_id,
        relying_party_name=client.name,
        acr_values=tuple(params.get("acr_values", "").split()),
        require_mfa=client.require_mfa,
        # select_account: Varco keeps one account per browser, so choosing means logging in again.
        force_authn=bool(prompts & {"login", "select_account"}),
        passive="none" in prompts,
        max_age=int(max_age) if max_age is not None else None,
        login_hint=params.get("login_hint") or None,
        ui_locales=tuple(params.get("ui_locales", "").split()),
        requested=tuple(client.get_allowed_scope(params.get("scope")).split()),
        protocol_state={"params": params},
    )


def subject_of(result: AuthnResult) -> Subject:
    return Subject(
        account_id=result.subject,
        grant_id="",
        sid=provider().sid_for(result.session_id),
        auth_time=result.auth_time,
        acr=result.acr,
        amr=list(result.amr),
    )


def issue_code(params: dict[str, str], subject: Subject, sso_session_id: str | None) -> Response:
    if sso_session_id:
        # The session's participants get a back-channel logout when it ends (logout.py).
        services().sessions.add_participant(sso_session_id, "oidc", params["client_id"], {"sid": subject.sid})
    server = provider().server
    oauth_request = StoredAuthorizationRequest(provider().url("authorization"), params)
    grant = server.get_authorization_grant(oauth_request)
    return server.create_authorization_response(oauth_request, grant_user=subject, grant=grant)


# --- answering errors -----------------------------------------------------------------------
def error_response(error: OAuth2Error, state: str | None) -> ResponseReturnValue:
    if not error.redirect_uri:
        return error_page(error)
    params = [("error", error.error)]
    if error.get_error_description():
        params.append(("error_description", error.get_error_description()))
    if state:
        params.append(("state", state))
    params.append(("iss", provider().issuer))  # RFC 9207 2
    return redirect(add_params_to_uri(error.redirect_uri, params), 302)


def error_page(error: OAuth2Error) -> tuple[str, int]:
    return render_template(
        "oidc/error.html", error=error.error, description=error.get_error_description()
    ), 400
