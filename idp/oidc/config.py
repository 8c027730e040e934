"""What the OP supports and for how long things live. Lifetimes follow RFC 9700 and OIDC Core;
per-client choices (token format, signing alg, subject type) live on the client registration."""

from __future__ import annotations

ACR_SFA = "https://refeds.org/profile/sfa"
ACR_MFA = "https://refeds.org/profile/mfa"
ACR_VALUES = (ACR_SFA, ACR_MFA)

GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SIGNING_ALGS = ("RS256", "ES256")
ASSERTION_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")

# Scope -> the claims it releases (OIDC Core 5.4, plus the university claims).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "given_name", "family_name", "preferred_username", "locale"),
    "email": ("email", "email_verified"),
    "offline_access": (),
    "eduperson": (
        "eduperson_affiliation",
        "eduperson_scoped_affiliation",
        "eduperson_principal_name",
        "schac_home_organization",
        "person_code",
        "student_id",
    ),
    # Released only to clients registered with allow_fiscal_number.
    "fiscal_number": ("fiscal_number",),
}
SCOPES = tuple(SCOPE_CLAIMS)

# Token lifetimes are settings ([oidc] in varco.toml); these are protocol constants.
CODE_TTL = 60  # seconds; single use (RFC 9700 4.5)
USED_CODE_MEMORY = 3600  # how long a redeemed code is remembered, to catch its reuse
PAR_TTL = 60  # RFC 9126 2.2: short-lived request_uri
DEVICE_POLL_INTERVAL = 5
ASSERTION_MAX_AGE = 300  # private_key_jwt assertions older than this are refused

MAX_PARAM_LENGTH = 2048
MAX_STATE_LENGTH = 1024
