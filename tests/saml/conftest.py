"""Fixtures for idp.saml: a real IdP configuration with fresh keys, and an in-memory replay guard."""

from __future__ import annotations

import pytest
from saml_testkit import MemoryReplayGuard, make_key_and_cert, make_subject

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


@pytest.fixture
def replay_guard() -> MemoryReplayGuard:
    return MemoryReplayGuard()


@pytest.fixture
def subject() -> SamlSubject:
    return make_subject()
