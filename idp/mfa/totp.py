"""TOTP (RFC 6238) with pyotp: secrets, provisioning URIs, inline SVG QR codes (segno), matching."""

from __future__ import annotations

import re
import time

import pyotp
import segno

from idp.keys import same_text

STEP = 30
DIGITS = 6
CODE = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account_name: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """An inline SVG (no external service, no image request)."""
    return segno.make(uri, error="m").svg_inline(scale=4, title="QR code")


def clean_code(raw: str) -> str:
    """Authenticator apps show `123 456`; accept spaces, nothing else."""
    return raw.replace(" ", "").strip()


def matching_counter(secret: str, code: str, now: float | None = None, window: int = 1) -> int | None:
    """The time step whose code equals `code`, within ±`window` steps (RFC 6238 5.2), else None."""
    if not CODE.match(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP)
    found = None
    for counter in range(current - window, current + window + 1):
        # Every candidate is compared, so timing does not tell which step matched.
        if same_text(totp.generate_otp(counter), code):
            found = counter
    return found
