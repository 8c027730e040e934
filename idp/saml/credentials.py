"""Key material for idp.saml, loaded once per process from PEM bytes."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import cached_property

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def cert_der_b64(cert_pem: bytes) -> str:
    """The base64 DER body of a PEM certificate, as it appears in ds:X509Certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def cert_pem_from_b64(der_b64: str) -> bytes:
    """PEM from the (possibly wrapped) base64 body found in metadata ds:X509Certificate."""
    der = base64.b64decode("".join(der_b64.split()))
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class SigningCredential:
    """An RSA private key and its certificate. xmlsec keys are built once and duplicated per use."""

    key_pem: bytes
    cert_pem: bytes
    password: str | None = field(default=None, repr=False)

    @cached_property
    def xmlsec_key(self) -> xmlsec.Key:
        # No certificate inside the key: signing.sign_enveloped writes ds:X509Certificate itself, and a key
        # carrying a certificate gets that certificate copied on every signature (about 0.3 ms each).
        return xmlsec.Key.from_memory(self.key_pem, xmlsec.KeyFormat.PEM, self.password)

    @cached_property
    def private_key(self):
        return serialization.load_pem_private_key(self.key_pem, self.password.encode() if self.password else None)

    @cached_property
    def cert_b64(self) -> str:
        return cert_der_b64(self.cert_pem)


@dataclass(frozen=True)
class Certificate:
    """A peer's certificate (SP signing or encryption key)."""

    pem: bytes = field(repr=False)

    @cached_property
    def xmlsec_key(self) -> xmlsec.Key:
        return xmlsec.Key.from_memory(self.pem, xmlsec.KeyFormat.CERT_PEM, None)

    @cached_property
    def public_key(self):
        return x509.load_pem_x509_certificate(self.pem).public_key()

    @cached_property
    def b64(self) -> str:
        return cert_der_b64(self.pem)
