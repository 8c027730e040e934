"""What the SAML web endpoints share, built once per process: Varco's IdpConfig, its signed metadata,
the SP registry, the replay guard, and the translations between SAML and the login flow
(AuthnRequest <-> LoginRequest.protocol_state, AuthnResult + account -> SamlSubject)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import current_app

from idp.flow.request import AuthnResult, LoginRequest
from idp.flow.steps import ACR_MFA
from idp.saml import constants as c
from idp.saml.attributes import fiscal_code_unique_id, person_code_unique_code
from idp.saml.config import IdpConfig
from idp.saml.credentials import SigningCredential
from idp.saml.errors import UnknownEndpointError, UnknownServiceProviderError
from idp.saml.metadata import build_idp_metadata
from idp.saml.registry import SpRegistry
from idp.saml.sso import AUTHN_CONTEXT_RANK, AuthnRequest, ResponseTarget
from idp.saml.subject import SamlSubject
from idp.store.models import Account

RESUME_PATH = "/saml/sso/resume"
# Metadata carries validUntil = 7 days; a long-running process re-signs it daily.
METADATA_REBUILD_SECONDS = 24 * 3600
# eduPersonAffiliation (eduPerson 2.2.1) for each Varco population; student and staff are also members.
AFFILIATIONS = {
    "student": ("student", "member"),
    "staff": ("staff", "employee", "member"),
    "guest": ("affiliate",),
    "service": (),
}


class SamlFrontend:
    """Per-process state of the SAML IdP, kept in ``app.extensions["varco_saml"]``."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self.registry = SpRegistry(services.db, services.ephemeral, services.settings.home / "config" / "sps")
        self._idp: IdpConfig | None = None
        self._metadata: tuple[float, bytes] | None = None
        self._lock = threading.Lock()

    @property
    def idp(self) -> IdpConfig:
        if self._idp is None:
            self._idp = build_idp_config(self.services)
        return self._idp

    def metadata(self) -> bytes:
        """Signed IdP metadata, built once and re-signed only when a day old."""
        cached = self._metadata
        if cached is None or time.monotonic() - cached[0] > METADATA_REBUILD_SECONDS:
            with self._lock:
                cached = self._metadata
                if cached is None or time.monotonic() - cached[0] > METADATA_REBUILD_SECONDS:
                    cached = (time.monotonic(), build_idp_metadata(self.idp))
                    self._metadata = cached
        return cached[1]

    def replay_guard(self, key: str, ttl: int) -> bool:
        # Fails closed: EphemeralUnavailable propagates and the app answers 503.
        return self.services.ephemeral.add(key, "1", ttl)

    def session_index(self, session_id: str) -> str:
        """A SessionIndex derived from the SSO session id; the id itself (a bearer secret) never leaves."""
        key = self.services.keys.derive(b"varco saml session index")
        return "_" + hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()[:40]


def saml_frontend() -> SamlFrontend:
    return current_app.extensions["varco_saml"]


def build_idp_config(services: Any) -> IdpConfig:
    settings = services.settings
    base = settings.server.issuer.rstrip("/") + "/saml"
    key = services.keys.active("RSA")
    name = settings.organization.name
    return IdpConfig(
        entity_id=f"{base}/metadata",
        sso_redirect_url=f"{base}/sso/redirect",
        sso_post_url=f"{base}/sso/post",
        slo_redirect_url=f"{base}/slo/redirect",
        slo_post_url=f"{base}/slo/post",
        signing=SigningCredential(key.private_pem, key.certificate_pem),
        scope=settings.organization.scope,
        name_id_salt=services.keys.derive(b"varco saml pairwise"),
        display_names=tuple((lang, name) for lang in settings.i18n.locales),
        session_lifetime_seconds=settings.sessions.lifetime_minutes * 60,
    )


# -- AuthnRequest <-> LoginRequest ---------------------------------------------------------------------


def request_state(request: AuthnRequest) -> dict[str, Any]:
    """What the resume endpoint needs to rebuild ``request``; kept server-side in the flow state."""
    return {
        "id": request.id,
        "sp": request.sp.entity_id,
        "acs_url": request.target.acs_url,
        "relay_state": request.target.relay_state,
        "binding": request.binding,
        "signed": request.signed,
        "issue_instant": request.issue_instant,
        "force_authn": request.force_authn,
        "is_passive": request.is_passive,
        "name_id_format": request.name_id_format,
        "acceptable_authn_contexts": list(request.acceptable_authn_contexts),
        "authn_context_requested": request.authn_context_requested,
        "received_at": request.received_at,
    }


def request_from_state(state: Mapping[str, Any], registry: SpRegistry) -> AuthnRequest:
    """Rebuild the AuthnRequest; the SP is looked up again (it may have been removed meanwhile)."""
    sp = registry.lookup(state["sp"])
    if sp is None:
        raise UnknownServiceProviderError(f"service provider {state['sp']!r} is no longer registered")
    if sp.acs_for(state["acs_url"], None) is None:
        raise UnknownEndpointError(f"ACS {state['acs_url']!r} is no longer registered for {sp.entity_id}")
    return AuthnRequest(
        id=state["id"],
        target=ResponseTarget(sp, state["acs_url"], state["id"] or None, state["relay_state"]),
        binding=state["binding"],
        signed=state["signed"],
        issue_instant=state["issue_instant"],
        force_authn=state["force_authn"],
        is_passive=state["is_passive"],
        name_id_format=state["name_id_format"],
        acceptable_authn_contexts=tuple(state["acceptable_authn_contexts"]),
        authn_context_requested=state["authn_context_requested"],
        received_at=state["received_at"],
    )


def login_request_for(request: AuthnRequest) -> LoginRequest:
    """The protocol-neutral request the flow acts on."""
    # The flow reads any MFA class in acr_values as "a second factor is required", so name MFA only when
    # nothing weaker would do (SAML Core 3.3.2.2.1: the IdP may pick any acceptable class).
    if request.requires_mfa:
        acr_values = tuple(request.acceptable_authn_contexts)
    elif request.authn_context_requested:
        acr_values = tuple(a for a in request.acceptable_authn_contexts if AUTHN_CONTEXT_RANK.get(a, 0) < 2)
    else:
        acr_values = ()
    return LoginRequest(
        return_to=RESUME_PATH,
        protocol="saml",
        relying_party=request.sp.entity_id,
        relying_party_name=request.sp.display_name,
        acr_values=acr_values,
        require_mfa=request.sp.require_mfa,
        force_authn=request.force_authn,
        passive=request.is_passive,
        protocol_state={"request": request_state(request)},
    )


# -- AuthnResult + account -> SamlSubject --------------------------------------------------------------


def achieved_context(result: AuthnResult, request: AuthnRequest) -> str:
    """The AuthnContextClassRef to assert: the strongest acceptable class not above what was achieved.

    When none fits, the achieved class is returned and ``build_response`` answers NoAuthnContext.
    """
    # The flow's acr is the one statement of what was achieved (it says MFA only when it happened).
    achieved = c.AC_REFEDS_MFA if result.acr == ACR_MFA else c.AC_PASSWORD_PROTECTED
    rank = AUTHN_CONTEXT_RANK[achieved]
    fitting = [a for a in request.acceptable_authn_contexts if AUTHN_CONTEXT_RANK.get(a, 99) <= rank]
    if not fitting:
        return achieved
    return max(fitting, key=lambda a: AUTHN_CONTEXT_RANK.get(a, 0))


def account_attributes(account: Account, scope: str) -> dict[str, list[str]]:
    """Every attribute Varco can state about ``account``, by friendly name; release picks among them."""
    affiliations = list(AFFILIATIONS.get(account.population, ()))
    attributes = {
        "eduPersonPrincipalName": [f"{account.username}@{scope}"],
        "eduPersonAffiliation": affiliations,
        "eduPersonScopedAffiliation": [f"{a}@{scope}" for a in affiliations],
        "schacHomeOrganization": [scope],
        "schacPersonalUniqueCode": [person_code_unique_code(scope, account.person_code)],
        "mail": [account.email],
        "displayName": [account.display_name],
        "givenName": [account.given_name],
        "sn": [account.family_name],
    }
    if account.fiscal_code:
        attributes["schacPersonalUniqueID"] = [fiscal_code_unique_id(account.fiscal_code)]
    return attributes


def subject_for(
    account: Account, result: AuthnResult, request: AuthnRequest, *, scope: str, session_index: str
) -> SamlSubject:
    return SamlSubject(
        account_id=account.id,
        username=account.username,
        attributes=account_attributes(account, scope),
        amr=list(result.amr),
        acr=achieved_context(result, request),
        auth_time=int(result.auth_time),
        session_index=session_index,
    )
