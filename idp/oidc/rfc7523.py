"""`private_key_jwt` client authentication (RFC 7523 2.2, OIDC Core 9) on Authlib's assertion checker,
narrowed to asymmetric algorithms, the OP's own audiences, a short lifetime and single use."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.oidc.config import ASSERTION_ALGS, ASSERTION_MAX_AGE
from idp.oidc.tokens import token_hash


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
