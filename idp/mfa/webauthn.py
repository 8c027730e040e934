"""WebAuthn (passkeys, security keys) as a second factor: the server half of both ceremonies.

Built on py_webauthn. Nothing here touches Flask or the database: the caller keeps the challenge
between the options and the verification (in the session, once) and stores `RegisteredCredential`.
Every failure, whatever its source, surfaces as `WebAuthnError` with a message fit for a log.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import parse_registration_credential_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

MAX_RESPONSE_BYTES = 64 * 1024

# EdDSA first: browsers take the first algorithm the authenticator supports.
SUPPORTED_ALGORITHMS = [
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_MAX_MESSAGE = 200


class WebAuthnError(Exception):
    """A ceremony failed; the message says which check and is safe to log or show an operator."""


@dataclass(frozen=True)
class RegisteredCredential:
    credential_id: bytes
    public_key: bytes  # COSE_Key, as the authenticator sent it
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_id: bytes,
    user_name: str,
    user_display_name: str,
    exclude_credential_ids: list[bytes],
) -> tuple[str, bytes]:
    """Options JSON for navigator.credentials.create(), and the challenge the caller must keep."""
    if not isinstance(user_id, bytes) or not user_id or len(user_id) > 64:
        raise WebAuthnError("user_id must be 1 to 64 bytes")  # WebAuthn L2 5.4.3
    try:
        options = generate_registration_options(
            rp_id=rp_id,
            rp_name=rp_name,
            user_id=user_id,
            user_name=user_name,
            user_display_name=user_display_name,
            attestation=AttestationConveyancePreference.NONE,
            # A second factor: no need to spend a resident slot on a hardware key.
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.DISCOURAGED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            # Stops the same authenticator being registered twice (WebAuthn L2 5.4 excludeCredentials).
            exclude_credentials=[PublicKeyCredentialDescriptor(id=_as_bytes(c)) for c in exclude_credential_ids],
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
        return options_to_json(options), options.challenge
    except WebAuthnError:
        raise
    except Exception as exc:
        raise WebAuthnError(f"cannot build registration options: {_describe(exc)}") from exc


def verify_registration(
    *,
    response_json: str,
    expected_challenge: bytes,
    expected_origin: str,
    rp_id: str,
    require_user_verification: bool = False,
) -> RegisteredCredential:
    """Check a navigator.credentials.create() response (WebAuthn L2 7.1) and return what to store."""
    credential = _load_response(response_json, ("clientDataJSON", "attestationObject"))
    _check_challenge(expected_challenge)
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=expected_challenge,
            expected_rp_id=rp_id,
            expected_origin=expected_origin,
            require_user_presence=True,
            require_user_verification=require_user_verification,
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
    except Exception as exc:
        raise WebAuthnError(f"registration refused: {_describe(exc)}") from exc
    transports = tuple(t.value for t in parsed.response.transports or ())
    return RegisteredCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
        aaguid=verified.aaguid,
    )


def authentication_options(
    *,
    rp_id: str,
    allow_credential_ids: list[bytes],
    user_verification: str = "preferred",
) -> tuple[str, bytes]:
    """Options JSON for navigator.credentials.get(), and the challenge the caller must keep."""
    try:
        options = generate_authentication_options(
            rp_id=rp_id,
            allow_credentials=[PublicKeyCredentialDescriptor(id=_as_bytes(c)) for c in allow_credential_ids],
            user_verification=UserVerificationRequirement(user_verification),
        )
        return options_to_json(options), options.challenge
    except WebAuthnError:
        raise
    except Exception as exc:
        raise WebAuthnError(f"cannot build authentication options: {_describe(exc)}") from exc


def credential_id_of(response_json: str) -> bytes:
    """The credential a navigator.credentials.get() response claims to come from, for the caller's
    lookup. Nothing is verified here: pass the stored key of that credential to verify_authentication."""
    credential = _load_response(response_json, ())
    return base64.urlsafe_b64decode(credential["rawId"] + "===")


def verify_authentication(
    *,
    response_json: str,
    expected_challenge: bytes,
    expected_origin: str,
    rp_id: str,
    credential_public_key: bytes,
    current_sign_count: int,
    require_user_verification: bool = False,
) -> int:
    """Check a navigator.credentials.get() response (WebAuthn L2 7.2); return the new sign count to store."""
    credential = _load_response(response_json, ("clientDataJSON", "authenticatorData", "signature", "userHandle"))
    _check_challenge(expected_challenge)
    if not isinstance(credential_public_key, bytes) or not credential_public_key:
        raise WebAuthnError("stored credential public key is missing")
    if not isinstance(current_sign_count, int) or isinstance(current_sign_count, bool) or current_sign_count < 0:
        raise WebAuthnError("stored sign count must be a non-negative integer")
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=rp_id,
            expected_origin=expected_origin,
            credential_public_key=credential_public_key,
            credential_current_sign_count=current_sign_count,
            require_user_verification=require_user_verification,
        )
    except Exception as exc:
        raise WebAuthnError(f"authentication refused: {_describe(exc)}") from exc
    new_count = verified.new_sign_count
    # WebAuthn L2 7.2 step 21: a counter that does not move forward signals a cloned authenticator.
    # py_webauthn checks this too; kept here so the rule does not depend on a library default.
    if new_count and current_sign_count and new_count <= current_sign_count:
        raise WebAuthnError(
            f"authentication refused: sign count {new_count} did not increase past {current_sign_count}"
            " (possible cloned authenticator)"
        )
    return new_count


def _load_response(response_json: str, base64_fields: tuple[str, ...]) -> dict[str, Any]:
    """Parse a browser response strictly before the library sees it: size, JSON shape, base64url."""
    if not isinstance(response_json, str):
        raise WebAuthnError("response must be a JSON string")
    if len(response_json.encode("utf-8", "surrogatepass")) > MAX_RESPONSE_BYTES:
        raise WebAuthnError(f"response is larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        credential = json.loads(response_json)
    except (ValueError, RecursionError) as exc:
        raise WebAuthnError("response is not valid JSON") from exc
    if not isinstance(credential, dict) or not isinstance(credential.get("response"), dict):
        raise WebAuthnError("response is not a PublicKeyCredential object")
    for name in ("id", "rawId"):
        _check_base64url(credential.get(name), name, required=True)
    if credential["id"] != credential["rawId"].rstrip("="):
        raise WebAuthnError("response id and rawId differ")
    for name in base64_fields:
        _check_base64url(credential["response"].get(name), name, required=name != "userHandle")
    return credential


def _check_base64url(value: object, name: str, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise WebAuthnError(f"response field {name} is missing or not a string")
    # The stdlib decoder silently drops characters outside the alphabet; refuse them instead.
    if not _BASE64URL.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
        raise WebAuthnError(f"response field {name} is not base64url")
    try:
        base64.urlsafe_b64decode(value + "===")
    except (binascii.Error, ValueError) as exc:
        raise WebAuthnError(f"response field {name} is not base64url") from exc


def _check_challenge(expected_challenge: bytes) -> None:
    # An empty expected challenge would match a response that carries none.
    if not isinstance(expected_challenge, bytes) or len(expected_challenge) < 16:
        raise WebAuthnError("expected challenge is missing or shorter than 16 bytes")


def _as_bytes(value: object) -> bytes:
    if not isinstance(value, bytes) or not value:
        raise WebAuthnError("credential ids must be non-empty bytes")
    return value


def _describe(exc: BaseException) -> str:
    """The library's own words when it has them, trimmed to one printable line (values inside come
    from the browser and may carry anything)."""
    if isinstance(exc, WebAuthnException) and str(exc):
        text = str(exc).replace(" See __cause__ for more info", "")
    else:
        text = f"malformed data ({type(exc).__name__}: {exc})"
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
