"""Fixtures for idp.saml: a real IdP configuration with fresh keys, and an in-memory replay guard."""

from __future__ import annotations

import time

import pytest
from saml_testkit import make_key_and_cert

from idp.saml import constants as c
from idp.saml.config import IdpConfig
from idp.saml.credentials import Certificate, SigningCredential
from idp.saml.subject import SamlSubject

IDP_ENTITY_ID = "https://idp.uni.example/saml/metadata"
IDP_BASE = "https://idp.uni.example/saml"


@pytest.fixture(scope="session")
def idp_keys() -> tuple[bytes, bytes]:
    return make_key_and_cert("idp.uni.example", 3072)


@pytest.fixture(scope="session")
def sp_keys() -> tuple[bytes, bytes]:
    return make_key_and_cert("sp.example.org", 2048)


@pytest.fixture(scope="session")
def idp(idp_keys: tuple[bytes, bytes]) -> IdpConfig:
    key_pem, cert_pem = idp_keys
    return IdpConfig(
        entity_id=IDP_ENTITY_ID,
        sso_redirect_url=f"{IDP_BASE}/sso/redirect",
        sso_post_url=f"{IDP_BASE}/sso/post",
        slo_redirect_url=f"{IDP_BASE}/slo/redirect",
        slo_post_url=f"{IDP_BASE}/slo/post",
        signing=SigningCredential(key_pem, cert_pem),
        encryption_certs=(Certificate(cert_pem),),
        scope="uni.example",
        name_id_salt=b"test-salt-not-secret",
        display_names=(("it", "Università di Esempio"), ("en", "University of Example")),
        logos=(
            ("it", "https://idp.uni.example/logo.png", 80, 60),
            ("en", "https://idp.uni.example/logo.png", 80, 60),
        ),
    )


class MemoryReplayGuard:
    """Set-if-absent with TTL, the contract the app backs with Redis or SQL."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def __call__(self, key: str, ttl_seconds: int) -> bool:
        now = time.time()
        if self.seen.get(key, 0) > now:
            return False
        self.seen[key] = now + ttl_seconds
        return True


@pytest.fixture
def replay_guard() -> MemoryReplayGuard:
    return MemoryReplayGuard()


def make_subject(acr: str = c.AC_PASSWORD_PROTECTED, auth_time: int | None = None) -> SamlSubject:
    return SamlSubject(
        account_id="acc-0042",
        username="mario.rossi",
        attributes={
            "eduPersonPrincipalName": ["mario.rossi@uni.example"],
            "eduPersonAffiliation": ["student", "member"],
            "eduPersonScopedAffiliation": ["student@uni.example", "member@uni.example"],
            "eduPersonEntitlement": ["urn:mace:uni.example:library"],
            "schacHomeOrganization": ["uni.example"],
            "schacPersonalUniqueID": ["urn:schac:personalUniqueID:it:CF:RSSMRA80A01H501U"],
            "mail": ["mario.rossi@studenti.uni.example"],
            "displayName": ["Mario Rossi"],
            "givenName": ["Mario"],
            "sn": ["Rossi"],
        },
        amr=["pwd"],
        acr=acr,
        auth_time=int(time.time()) if auth_time is None else auth_time,
        session_index="_sess-" + str(int(time.time() * 1000)),
    )


@pytest.fixture
def subject() -> SamlSubject:
    return make_subject()
