"""Signing and encryption keys: generated into `keys/` (mode 0600), loaded once per process.

Layout of `keys/`:
  manifest.json          kid, kind, created, status (active | retired) of every signing key
  <kid>.pem              private key (RSA 3072 or EC P-256)
  <kid>.crt              self-signed certificate for the RSA key (SAML metadata publishes it)
  secret.key             32 random bytes (base64) from which the secret-encryption and
                         cookie-signing keys are derived with HKDF
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, RSAKey


def same_text(a: str, b: str) -> bool:
    """Whether two strings (MACs, secrets, codes) are equal, in constant time. hmac.compare_digest
    takes strings only when both are ASCII and raises TypeError otherwise, so the two are compared
    as UTF-8 bytes: a value from outside (a cookie, a form field, an upstream assertion) may hold
    any character, and is then simply not equal."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


class KeysMissing(Exception):
    """`keys/` has no usable keys; `varco keys init` creates them."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    kind: str  # "RSA" or "EC"
    created: str
    status: str
    private_pem: bytes
    certificate_pem: bytes | None

    @property
    def alg(self) -> str:
        return "RS256" if self.kind == "RSA" else "ES256"

    def jwk(self) -> RSAKey | ECKey:
        cls = RSAKey if self.kind == "RSA" else ECKey
        return cls.import_key(self.private_pem, {"kid": self.kid, "use": "sig", "alg": self.alg})


class KeyRing:
    def __init__(self, directory: Path, signing: list[SigningKey], secret: bytes) -> None:
        self.directory = directory
        self.signing = signing
        self._secret = secret
        self.cookie_key = self.derive(b"varco cookie signing")
        self._aead = AESGCM(self.derive(b"varco secret encryption"))

    def derive(self, purpose: bytes, length: int = 32) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose).derive(self._secret)

    def active(self, kind: str) -> SigningKey:
        for key in self.signing:
            if key.kind == kind and key.status == "active":
                return key
        raise KeysMissing(f"no active {kind} signing key in {self.directory}; run `varco keys init`")

    def encrypt(self, plaintext: bytes, context: bytes) -> str:
        """AES-256-GCM with a random nonce; `context` binds the ciphertext to where it is stored."""
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plaintext, context)).decode()

    def decrypt(self, token: str, context: bytes) -> bytes:
        raw = base64.urlsafe_b64decode(token.encode())
        return self._aead.decrypt(raw[:12], raw[12:], context)

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        manifest_path = directory / "manifest.json"
        secret_path = directory / "secret.key"
        if not manifest_path.exists() or not secret_path.exists():
            raise KeysMissing(f"no keys in {directory}; run `varco keys init`")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        signing = []
        for entry in manifest["keys"]:
            cert = directory / f"{entry['kid']}.crt"
            signing.append(
                SigningKey(
                    kid=entry["kid"],
                    kind=entry["kind"],
                    created=entry["created"],
                    status=entry["status"],
                    private_pem=(directory / f"{entry['kid']}.pem").read_bytes(),
                    certificate_pem=cert.read_bytes() if cert.exists() else None,
                )
            )
        return cls(directory, signing, base64.b64decode(secret_path.read_bytes()))


def init_keys(directory: Path, common_name: str = "Varco") -> list[str]:
    """Create the keys that are missing; never replaces an existing key. Returns what was created."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    created: list[str] = []
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {"keys": []}
    kinds = {entry["kind"] for entry in manifest["keys"] if entry["status"] == "active"}
    for kind in ("RSA", "EC"):
        if kind not in kinds:
            entry = _new_signing_key(directory, kind, common_name)
            manifest["keys"].append(entry)
            created.append(f"{kind} signing key {entry['kid']}")
    secret_path = directory / "secret.key"
    if not secret_path.exists():
        _write_private(secret_path, base64.b64encode(secrets.token_bytes(32)))
        created.append("secret-encryption key")
    _write_private(manifest_path, json.dumps(manifest, indent=2).encode())
    return created


def _new_signing_key(directory: Path, kind: str, common_name: str) -> dict:
    now = dt.datetime.now(dt.UTC)
    if kind == "RSA":
        private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    kid = (RSAKey if kind == "RSA" else ECKey).import_key(pem).thumbprint()
    _write_private(directory / f"{kid}.pem", pem)
    if kind == "RSA":
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .sign(private, hashes.SHA256())
        )
        _write_private(directory / f"{kid}.crt", cert.public_bytes(serialization.Encoding.PEM))
    return {"kid": kid, "kind": kind, "created": now.isoformat(timespec="seconds"), "status": "active"}


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)
