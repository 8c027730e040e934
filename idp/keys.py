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
import logging
import os
import re
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

log = logging.getLogger("varco")


def same_text(a: str, b: str) -> bool:
    """Whether two strings (MACs, secrets, codes) are equal, in constant time. hmac.compare_digest
    takes strings only when both are ASCII and raises TypeError otherwise, so the two are compared
    as UTF-8 bytes: a value from outside (a cookie, a form field, an upstream assertion) may hold
    any character, and is then simply not equal."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


class KeysUnusable(Exception):
    """The keys directory cannot be used as it is; the message says what is wrong and what to do."""


class KeysMissing(KeysUnusable):
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
        """The keys in `directory`, each checked (KeysBroken names the first that is not usable):
        the manifest, every key file it lists, and the secret's length. Reading a key whose file
        was damaged would otherwise fail at the first request that signs with it."""
        manifest_path = directory / "manifest.json"
        secret_path = directory / "secret.key"
        _check_folder(directory)
        try:
            if not manifest_path.exists() or not secret_path.exists():
                raise KeysMissing(f"no keys in {directory}; run `varco keys init`")
            signing = [_load_signing_key(directory, entry) for entry in read_manifest(manifest_path)]
            secret = _load_secret(secret_path)
        except OSError as exc:
            raise KeysBroken(f"{directory}: cannot read the keys ({exc.strerror or exc})") from exc
        for kind in ("RSA", "EC"):
            if not any(key.kind == kind and key.status == "active" for key in signing):
                raise KeysBroken(f"{manifest_path}: no active {kind} signing key; run `varco keys init`")
        exposed = [path.name for path in (secret_path, *directory.glob("*.pem")) if path.stat().st_mode & 0o077]
        if exposed:
            log.warning("%s: readable by other users: %s; run `varco keys init` to fix", directory, ", ".join(exposed))
        return cls(directory, signing, secret)


class KeysBroken(KeysUnusable):
    """A key file is damaged or missing beside a manifest that lists it: restore it from a backup."""


MANIFEST_FIELDS = ("kid", "kind", "created", "status")
SECRET_LENGTH = 32


def _check_folder(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise KeysBroken(f"{directory} is not a folder; move it away and run `varco keys init`")


def read_manifest(path: Path) -> list[dict]:
    """The manifest's entries, each with its fields; KeysBroken if the file is not such a manifest."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeysBroken(f"{path} is not valid JSON ({exc}); restore it from a backup") from exc
    entries = manifest.get("keys") if isinstance(manifest, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and all(isinstance(entry.get(name), str) for name in MANIFEST_FIELDS)
        for entry in entries
    ):
        shape = '{"keys": [{"kid", "kind", "created", "status"}, ...]}'
        raise KeysBroken(f"{path}: not a key manifest, expected {shape}; restore it from a backup")
    for entry in entries:
        if entry["kind"] not in ("RSA", "EC") or entry["status"] not in ("active", "retired"):
            raise KeysBroken(f"{path}: key {entry['kid']!r} has an unknown kind or status; restore it from a backup")
        if not KID.fullmatch(entry["kid"]):
            raise KeysBroken(f"{path}: {entry['kid']!r} is not a key id; restore the manifest from a backup")
    return entries


# A key id is a JWK thumbprint (RFC 7638: base64url of SHA-256); it also names the key's files.
KID = re.compile(r"[A-Za-z0-9_-]{43}")


def _load_signing_key(directory: Path, entry: dict) -> SigningKey:
    pem_path, cert_path = directory / f"{entry['kid']}.pem", directory / f"{entry['kid']}.crt"
    if not pem_path.exists():
        raise KeysBroken(f"{pem_path} is missing (the manifest lists it); restore it from a backup")
    pem = pem_path.read_bytes()
    try:
        # The structure only: the costly check of an RSA key's numbers is made once, when the key
        # is first used (idp/oidc/signing.py), not by every command that loads the keys.
        private = serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise KeysBroken(f"{pem_path} is not a private key ({exc}); restore it from a backup") from exc
    expected = rsa.RSAPrivateKey if entry["kind"] == "RSA" else ec.EllipticCurvePrivateKey
    if not isinstance(private, expected):
        raise KeysBroken(f"{pem_path} is not an {entry['kind']} key, as the manifest says; restore it from a backup")
    certificate = cert_path.read_bytes() if cert_path.exists() else None
    if entry["kind"] == "RSA" and entry["status"] == "active":
        try:
            if certificate is None or x509.load_pem_x509_certificate(certificate).public_key() != private.public_key():
                raise ValueError("it is missing, or certifies another key")
        except ValueError as exc:
            raise KeysBroken(f"{cert_path}: not the certificate of {pem_path.name} ({exc})") from exc
    return SigningKey(entry["kid"], entry["kind"], entry["created"], entry["status"], pem, certificate)


def _load_secret(path: Path) -> bytes:
    try:
        secret = base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:
        secret = b""
    if len(secret) != SECRET_LENGTH:
        # An empty or short secret would let anyone derive the cookie and encryption keys.
        raise KeysBroken(f"{path} does not hold a {SECRET_LENGTH}-byte secret in base64; restore it from a backup")
    return secret


def init_keys(directory: Path, common_name: str = "Varco") -> list[str]:
    """Create the keys that are missing; never replaces an existing key. Returns what was created."""
    _check_folder(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    created: list[str] = []
    manifest_path = directory / "manifest.json"
    manifest = {"keys": read_manifest(manifest_path) if manifest_path.exists() else []}
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
    for path in directory.iterdir():
        if path.suffix in (".pem", ".crt", ".key", ".json") and path.stat().st_mode & 0o077:
            path.chmod(0o600)
            created.append(f"permissions of {path.name} set to 0600")
    KeyRing.load(directory)  # what is there (new or not) must be usable: KeysBroken otherwise
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
        # A common name has at most 64 characters (RFC 5280 ub-common-name; cryptography counts
        # UTF-8 bytes): a longer organisation name is shortened, as the name is only a label here.
        label = common_name.strip().encode()[:64].decode(errors="ignore") or "Varco"
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, label)])
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
