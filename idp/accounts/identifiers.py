"""How typed identifiers and free text are checked and normalised before any lookup."""

from __future__ import annotations

import re
import unicodedata

# Unicode's control characters (general category Cc, a set the Unicode stability policy fixes)
# and lone surrogates (Cs), as one character class: searched in C instead of asking
# unicodedata.category() character by character (tests/accounts/test_identifiers.py checks it
# against unicodedata over every code point).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


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
    if CONTROL_CHARACTERS.search(value):
        raise InvalidInput(field, "control_characters")
    return value


def normalise_identifier(value: str) -> str:
    """NFKC, trimmed, case-folded: `Mario.Rossi@Uni.IT ` and `mario.rossi@uni.it` are one identifier."""
    return unicodedata.normalize("NFKC", value).strip().casefold()
