"""`private_key_jwt` client authentication (RFC 7523 2.2, OIDC Core 9) on Authlib's assertion checker,
narrowed to asymmetric algorithms, the OP's own audiences, a short lifetime and single use."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet

from idp.oidc.config import ASSERTION_ALGS, ASSERTION_MAX_AGE
from idp.oidc.tokens import token_hash

# What a registered key must verify (SIGNING_ALGS), per key type; RFC 7518 3.3: RSA keys of 2048 bits or more.
REGISTRABLE_KEYS = {"RSA": "RS256", "EC": "ES256"}
MIN_RSA_BITS = 2048


class UnusableKeys(ValueError):
    """A JWK set a private_key_jwt client may not register; the message says which key and why."""


def check_client_jwks(jwks: object) -> None:
    """The client's public keys (RFC 7517 5): each a public RSA or EC P-256 key that can verify RS256 or
    ES256 assertions. A private key is refused too: the client must never have sent it anywhere."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise UnusableKeys('not a JWK set: give a JSON object {"keys": [...]} with the client\'s public keys')
    for number, data in enumerate(keys, 1):
        if not isinstance(data, dict):
            raise UnusableKeys(f"key {number} is not a JWK (a JSON object)")
        try:
            key = JWKRegistry.import_key(data)
        except (JoseError, ValueError, TypeError) as exc:
            raise UnusableKeys(f"key {number} is not a valid JWK ({exc})") from None
        alg = REGISTRABLE_KEYS.get(key.key_type)
        if alg is None:
            raise UnusableKeys(f"key {number} is a {key.key_type!r} key; give RSA (RS256) or EC P-256 (ES256) keys")
        if key.is_private:
            raise UnusableKeys(f"key {number} is a private key; register only the client's public keys")
        if key.key_type == "RSA" and key.public_key.key_size < MIN_RSA_BITS:
            raise UnusableKeys(f"key {number} is an RSA key shorter than {MIN_RSA_BITS} bits")
        if key.key_type == "EC" and key.get("crv") != "P-256":
            raise UnusableKeys(f"key {number} is an EC key on {key.get('crv')}; ES256 needs P-256")
        try:
            key.check_use("sig")
            key.check_key_op("verify")
            key.check_alg(alg)
        except JoseError as exc:
            raise UnusableKeys(f"key {number} cannot verify {alg} signatures ({exc})") from None


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, op: Any) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.op = op

    def get_audiences(self) -> list[str]:
        # OIDC Core 9: the audience SHOULD be the token endpoint; the issuer is accepted too (RFC 7523 3).
        return [self.op.issuer, self.op.url("token")]

    def resolve_client_public_key(self, client: Any) -> KeySet:
        if not client.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(client.jwks)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict:
        try:
            # Only asymmetric algorithms: 'none' and HMAC keyed with a public key are refused.
            token = jwt.decode(assertion, resolve_key, algorithms=list(ASSERTION_ALGS))
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="The client assertion is not validly signed.") from exc
        claims = token.claims
        self.verify_claims(claims)
        now = time.time()
        issued = claims.get("iat")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] - now > ASSERTION_MAX_AGE:
            raise InvalidClientError(description="The client assertion lives too long.")
        if isinstance(issued, int | float) and now - issued > ASSERTION_MAX_AGE:
            raise InvalidClientError(description="The client assertion is too old.")
        return claims

    def validate_jti(self, claims: dict, jti: Any) -> bool:
        # RFC 7523 3 item 7: each assertion is accepted once (remembered until it expires).
        if not isinstance(jti, str) or len(jti) > 256:
            return False
        ttl = int(claims["exp"] - time.time()) + self.leeway + 1
        return self.op.ephemeral.add(f"oidc:jti:{claims['sub']}:{token_hash(jti)}", "1", max(ttl, 1))
