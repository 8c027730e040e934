"""Passkeys (WebAuthn) in the login flow: the ceremony's challenge lives in the flow state."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from idp.flow.steps import FlowContext
from idp.mfa import webauthn


def relying_party(ctx: FlowContext) -> tuple[str, str]:
    """(rp_id, origin) from the issuer URL: passkeys are bound to Varco's own origin."""
    issuer = urlsplit(ctx.services.settings.server.issuer)
    return issuer.hostname or "localhost", f"{issuer.scheme}://{issuer.netloc}"


def _remember(ctx: FlowContext, challenge: bytes) -> None:
    ctx.state.data["webauthn_challenge"] = base64.urlsafe_b64encode(challenge).decode()
    ctx.dirty = True


def _challenge(ctx: FlowContext) -> bytes | None:
    value = ctx.state.data.pop("webauthn_challenge", None)
    return base64.urlsafe_b64decode(value) if value else None


def begin_registration(ctx: FlowContext) -> str:
    account = ctx.account
    rp_id, _ = relying_party(ctx)
    existing = [bytes.fromhex(c.webauthn_id) for c in ctx.services.mfa.webauthn_credentials(account.id)]
    options, challenge = webauthn.registration_options(
        rp_id=rp_id,
        rp_name=ctx.services.settings.organization.name,
        user_id=account.id.encode(),
        user_name=account.username,
        user_display_name=account.display_name,
        exclude_credential_ids=existing,
    )
    _remember(ctx, challenge)
    return options


def finish_registration(ctx: FlowContext, response_json: str) -> str | None:
    """None when the passkey was registered, else a message key."""
    challenge = _challenge(ctx)
    if challenge is None or not response_json:
        return "passkey_failed"
    rp_id, origin = relying_party(ctx)
    try:
        credential = webauthn.verify_registration(
            response_json=response_json, expected_challenge=challenge, expected_origin=origin, rp_id=rp_id
        )
    except webauthn.WebAuthnError:
        return "passkey_failed"
    ctx.services.mfa.add_webauthn(
        ctx.account.id, credential.credential_id, credential.public_key, credential.sign_count, ctx.account.username
    )
    return None


def begin_authentication(ctx: FlowContext) -> str:
    rp_id, _ = relying_party(ctx)
    allowed = [bytes.fromhex(c.webauthn_id) for c in ctx.services.mfa.webauthn_credentials(ctx.account.id)]
    options, challenge = webauthn.authentication_options(rp_id=rp_id, allow_credential_ids=allowed)
    _remember(ctx, challenge)
    return options


def finish_authentication(ctx: FlowContext, response_json: str) -> str | None:
    challenge = _challenge(ctx)
    if challenge is None or not response_json:
        return "passkey_failed"
    rp_id, origin = relying_party(ctx)
    try:
        credential_id = webauthn.credential_id_of(response_json)
    except webauthn.WebAuthnError:
        return "passkey_failed"
    for stored in ctx.services.mfa.webauthn_credentials(ctx.account.id):
        if stored.webauthn_id == credential_id.hex():
            try:
                count = webauthn.verify_authentication(
                    response_json=response_json,
                    expected_challenge=challenge,
                    expected_origin=origin,
                    rp_id=rp_id,
                    credential_public_key=bytes.fromhex(stored.public_key),
                    current_sign_count=stored.sign_count,
                )
            except webauthn.WebAuthnError:
                return "passkey_failed"
            ctx.services.mfa.record_webauthn_use(stored.id, count)
            return None
    return "passkey_failed"
