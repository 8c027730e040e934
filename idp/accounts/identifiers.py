"""How typed identifiers and free text are checked and normalised before any lookup."""

from __future__ import annotations

import unicodedata


class InvalidInput(ValueError):
    """A field is malformed; `field` names it and the message says what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_text(field: str, value: str, max_length: int, *, required: bool = True) -> str:
    """Refuse control characters, undecodable bytes (U+FFFD from the form decoder) and oversize text."""
    if required and not value.strip():
        raise InvalidInput(field, "required")
    if len(value) > max_length:
        raise InvalidInput(field, "too_long")
    if "\ufffd" in value:
        raise InvalidInput(field, "bad_encoding")
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in value):
        raise InvalidInput(field, "control_characters")
    return value


def normalise_identifier(value: str) -> str:
    """NFKC, trimmed, case-folded: `Mario.Rossi@Uni.IT ` and `mario.rossi@uni.it` are one identifier."""
    return unicodedata.normalize("NFKC", value).strip().casefold()
