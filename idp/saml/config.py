"""Varco's own SAML IdP settings, built once per process by the app from settings and keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from idp.saml import constants as c
from idp.saml.credentials import Certificate, SigningCredential


@dataclass(frozen=True)
class IdpConfig:
    """Varco's own IdP identity and limits; built once per process from settings and keys."""

    entity_id: str
    sso_redirect_url: str
    sso_post_url: str
    slo_redirect_url: str
    slo_post_url: str
    signing: SigningCredential
    scope: str
    name_id_salt: bytes = field(repr=False)
    encryption_certs: tuple[Certificate, ...] = ()
    # (lang, text) pairs for mdui:DisplayName, and (lang, url, width, height) for mdui:Logo
    display_names: tuple[tuple[str, str], ...] = ()
    logos: tuple[tuple[str, str, int, int], ...] = ()
    clock_skew_seconds: int = 180
    max_request_age_seconds: int = 300
    assertion_lifetime_seconds: int = 300
    session_lifetime_seconds: int = 8 * 3600
    max_message_bytes: int = 256 * 1024
    supported_authn_contexts: tuple[str, ...] = (
        c.AC_PASSWORD_PROTECTED,
        c.AC_REFEDS_MFA,
    )
