"""Generate throw-away RSA keys and self-signed certificates for tests and the benchmark."""

from __future__ import annotations

import datetime
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from idp.saml import constants as c
from idp.saml.subject import SamlSubject


def make_key_and_cert(common_name: str, bits: int = 3072) -> tuple[bytes, bytes]:
    """(private key PEM, self-signed certificate PEM), valid from yesterday for one year."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def authn_request_xml(
    issuer: str,
    *,
    request_id: str = "_req-0001",
    issue_instant: str | None = None,
    destination: str | None = "https://idp.uni.example/saml/sso/post",
    acs_url: str | None = None,
    acs_index: int | None = None,
    protocol_binding: str | None = None,
    inner: str = "",
    attrs: str = "",
) -> bytes:
    """A hand-built AuthnRequest, as a hostile or sloppy SP could send it."""
    if issue_instant is None:
        issue_instant = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [f'ID="{request_id}"', 'Version="2.0"', f'IssueInstant="{issue_instant}"']
    if destination is not None:
        parts.append(f'Destination="{destination}"')
    if acs_url is not None:
        parts.append(f'AssertionConsumerServiceURL="{acs_url}"')
    if acs_index is not None:
        parts.append(f'AssertionConsumerServiceIndex="{acs_index}"')
    if protocol_binding is not None:
        parts.append(f'ProtocolBinding="{protocol_binding}"')
    if attrs:
        parts.append(attrs)
    return (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ' + " ".join(parts) + ">"
        f"<saml:Issuer>{issuer}</saml:Issuer>{inner}</samlp:AuthnRequest>"
    ).encode()


def sp_metadata_xml(
    entity_id: str,
    cert_pem: bytes,
    *,
    authn_requests_signed: bool = False,
    acs: tuple[tuple[int, str], ...] = ((0, "https://app.uni.example/saml/acs"),),
    extensions: str = "",
    sp_extra: str = "",
    encryption: bool = False,
) -> bytes:
    """Minimal SP metadata with HTTP-POST ACS endpoints and one signing (and optional encryption) key."""
    body = b"".join(cert_pem.split(b"\n")[1:-2]).decode()
    key = (
        '<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )
    keys = key.format(use="signing") + (key.format(use="encryption") if encryption else "")
    endpoints = "".join(
        f'<md:AssertionConsumerService index="{i}" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{url}"/>'
        for i, url in acs
    )
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
        'xmlns:mdattr="urn:oasis:names:tc:SAML:metadata:attribute" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'entityID="{entity_id}">'
        + (f"<md:Extensions>{extensions}</md:Extensions>" if extensions else "")
        + '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" '
        f'AuthnRequestsSigned="{str(authn_requests_signed).lower()}">'
        f"{keys}{endpoints}{sp_extra}</md:SPSSODescriptor></md:EntityDescriptor>"
    ).encode()


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
