"""A software WebAuthn authenticator plus the browser's part of the ceremony, for tests.

`create()` answers registration options the way navigator.credentials.create() would (attestation
"none"), `get()` answers authentication options the way navigator.credentials.get() would. Both
return the JSON a browser sends (base64url fields, WebAuthn L3 toJSON shape), with keyword
arguments to tamper with each part a verifier must check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40

ALGORITHMS = {"ES256": -7, "RS256": -257, "EdDSA": -8}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "===")


@dataclass
class SoftCredential:
    credential_id: bytes
    rp_id: str
    user_handle: bytes
    algorithm: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    def cose_public_key(self) -> bytes:
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            # RFC 9053 7.1.1: kty EC2, alg, crv P-256, x, y
            key = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        elif isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
            key = {1: 3, 3: -257, -1: n, -2: numbers.e.to_bytes(3, "big")}  # RFC 8230 4
        else:
            key = {1: 1, 3: -8, -1: 6, -2: public.public_bytes(Encoding.Raw, PublicFormat.Raw)}  # OKP Ed25519
        return cbor2.dumps(key)

    def sign(self, data: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(data)


class SoftAuthenticator:
    """Holds credentials and a single signature counter, like most roaming authenticators."""

    def __init__(self, *, user_verified: bool = True, counter: bool = True, aaguid: bytes = bytes(16)) -> None:
        self.user_verified = user_verified
        self.counter_enabled = counter
        self.aaguid = aaguid
        self.sign_count = 0
        self.credentials: dict[bytes, SoftCredential] = {}

    def create(
        self,
        options_json: str,
        origin: str,
        *,
        algorithm: str = "ES256",
        challenge: bytes | None = None,
        rp_id: str | None = None,
        transports: tuple[str, ...] = ("usb",),
    ) -> str:
        """navigator.credentials.create(); `challenge` and `rp_id` override what the options say."""
        options = json.loads(options_json)
        offered = {p["alg"] for p in options["pubKeyCredParams"]}
        if ALGORITHMS[algorithm] not in offered:
            raise ValueError(f"{algorithm} not offered by the relying party")
        excluded = {unb64url(c["id"]) for c in options.get("excludeCredentials", [])}
        if excluded & self.credentials.keys():
            raise ValueError("InvalidStateError: authenticator already registered")
        rp_id = rp_id if rp_id is not None else options["rp"]["id"]
        credential = SoftCredential(
            credential_id=secrets.token_bytes(32),
            rp_id=options["rp"]["id"],
            user_handle=unb64url(options["user"]["id"]),
            algorithm=algorithm,
            private_key=_new_key(algorithm),
        )
        self.credentials[credential.credential_id] = credential
        public_key = credential.cose_public_key()
        # WebAuthn L2 6.5.1: aaguid, credentialIdLength, credentialId, credentialPublicKey
        cred_id = credential.credential_id
        attested = self.aaguid + len(cred_id).to_bytes(2, "big") + cred_id + public_key
        auth_data = self._auth_data(rp_id, FLAG_AT, self.sign_count) + attested
        client_data = _client_data("webauthn.create", challenge or unb64url(options["challenge"]), origin)
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "authenticatorAttachment": "cross-platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation_object),
                    "transports": list(transports),
                },
            }
        )

    def get(
        self,
        options_json: str,
        origin: str,
        *,
        credential_id: bytes | None = None,
        challenge: bytes | None = None,
        rp_id: str | None = None,
        sign_count: int | None = None,
        bad_signature: bool = False,
        client_data_type: str = "webauthn.get",
    ) -> str:
        """navigator.credentials.get(). `sign_count` replays or forces a counter value instead of
        incrementing; `bad_signature` signs other bytes than the ones sent."""
        options = json.loads(options_json)
        credential = self._pick(options, credential_id)
        rp_id = rp_id if rp_id is not None else options["rpId"]
        if sign_count is None:
            if self.counter_enabled:
                self.sign_count += 1
            sign_count = self.sign_count
        auth_data = self._auth_data(rp_id, 0, sign_count)
        client_data = _client_data(client_data_type, challenge or unb64url(options["challenge"]), origin)
        signed = auth_data + hashlib.sha256(client_data).digest()  # WebAuthn L2 6.3.3 step 11
        signature = credential.sign(signed + b"tampered" if bad_signature else signed)
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "authenticatorAttachment": "cross-platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(credential.user_handle),
                },
            }
        )

    def _pick(self, options: dict, credential_id: bytes | None) -> SoftCredential:
        if credential_id is not None:
            return self.credentials[credential_id]
        allowed = {unb64url(c["id"]) for c in options.get("allowCredentials", [])}
        for candidate in self.credentials.values():
            if candidate.rp_id == options["rpId"] and (not allowed or candidate.credential_id in allowed):
                return candidate
        raise LookupError("NotAllowedError: no matching credential on this authenticator")

    def _auth_data(self, rp_id: str, extra_flags: int, sign_count: int) -> bytes:
        flags = FLAG_UP | extra_flags | (FLAG_UV if self.user_verified else 0)
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + sign_count.to_bytes(4, "big")


def _client_data(ceremony: str, challenge: bytes, origin: str) -> bytes:
    # WebAuthn L2 5.8.1.1: the browser serialises these members first, in this order.
    return json.dumps(
        {"type": ceremony, "challenge": b64url(challenge), "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()


def _new_key(algorithm: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()
