"""How typed identifiers, free text and the fields of an account are checked and normalised."""

from __future__ import annotations

import functools
import re
import unicodedata

from babel import Locale
from codicefiscale import codicefiscale
from email_validator import EmailNotValidError, validate_email

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


# The English of `check_text`'s codes, for the command line and the registries (the web pages have
# theirs, translated, in idp/flow/messages.py); other codes are whole sentences already.
INPUT_MESSAGES = {
    "required": "required",
    "too_long": "too long",
    "bad_encoding": "not valid UTF-8",
    "control_characters": "contains control characters, which are not allowed",
}


def input_message(code: str) -> str:
    return INPUT_MESSAGES.get(code, code)


def printable(text: str) -> str:
    """`text` with its control characters and lone surrogates written as escapes (\\x1b, \\n): for a
    terminal, where a stored value must not move the cursor, recolour the screen or break a row."""
    return CONTROL_CHARACTERS.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


def normalise_identifier(value: str) -> str:
    """NFKC, trimmed, case-folded: `Mario.Rossi@Uni.IT ` and `mario.rossi@uni.it` are one identifier."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


# --- the fields of an account ---------------------------------------------------------------
# What each field of a new account must be, and the one form it is stored and compared in. The
# messages are whole English sentences: `varco users add` prints them after the flag they name.

FORMAT_CHARACTERS = "contains invisible formatting characters (zero-width, bidi controls); retype it without them"

# ZERO WIDTH NON-JOINER and ZERO WIDTH JOINER: part of how Persian, Arabic and the Indic scripts
# spell words, so a name may hold them between letters (RFC 5892 Appendix A.1-A.2 allows them in
# such contexts only).
JOINERS = frozenset("\u200c\u200d")
# Hangul fillers: letters to Unicode (Lo) that draw nothing (Default_Ignorable_Code_Point).
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")

STUDENT_ID = re.compile(r"[a-z0-9]{1,64}")  # after normalise_identifier: casefolded ASCII only
FISCAL_CODE = re.compile(r"[A-Z0-9]{16}")
# ISO 3166-1 alpha-2 codes that name no country: the user-assigned ones (AA, QM-QZ, XA-XZ, ZZ)
# and the exceptionally reserved ones. Unicode CLDR, which lists the territories, uses some.
NOT_ISO_3166_COUNTRIES = re.compile(r"AA|Q[M-Z]|X[A-Z]|ZZ|AC|CP|CQ|DG|EA|EU|EZ|FX|IC|SU|TA|UK|UN")


def has_format_characters(value: str) -> bool:
    """Whether `value` holds a Unicode format character (Cf): zero-width spaces and joiners, bidi
    overrides and isolates, word joiners, the BOM... invisible, so two such strings look alike."""
    return any(unicodedata.category(ch) == "Cf" for ch in value)


def check_identifier(field: str, value: str, max_length: int) -> str:
    """`check_text`, and no format characters: an identifier must read the way it is stored."""
    check_text(field, value, max_length)
    if has_format_characters(value):
        raise InvalidInput(field, FORMAT_CHARACTERS)
    return value


def check_name(field: str, value: str, max_length: int = 200) -> str:
    """A given or family name, trimmed: at least one visible letter, and no format characters
    other than the joiners inside a word (RFC 5892 A.1-A.2), so no bidi override can reorder how
    the name reads on a page or in a terminal."""
    name = check_text(field, value, max_length).strip()
    for index, ch in enumerate(name):
        if unicodedata.category(ch) != "Cf":
            continue
        inside_word = 0 < index < len(name) - 1 and all(
            unicodedata.category(near)[0] in "LM" for near in (name[index - 1], name[index + 1])
        )
        if ch not in JOINERS or not inside_word:
            raise InvalidInput(field, FORMAT_CHARACTERS)
    if not any(unicodedata.category(ch)[0] == "L" and ch not in INVISIBLE_LETTERS for ch in name):
        raise InvalidInput(field, "must contain at least one letter")
    return name


def canonical_email(field: str, value: str) -> str:
    """One mailbox, in the normalised form login compares. The syntax is the `email-validator`
    library's (RFC 5321/5322 dot-atoms, IDNA 2008 domains, no quoted local parts, no comments):
    a comma or semicolon would make a second recipient of a To header (smtplib's send_message)."""
    typed = normalise_identifier(check_identifier(field, value, 320))
    try:
        checked = validate_email(typed, check_deliverability=False)
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        raise InvalidInput(field, f"not one valid e-mail address ({reason}); give one such as name@uni.it") from None
    return normalise_identifier(checked.normalized)


def canonical_student_id(value: str) -> str:
    """A student ID (matricola), as login compares it: ASCII letters and digits.

    Digits of other scripts (Arabic-Indic ١٢٣, Devanagari १२३) are refused, not mapped: NFKC
    leaves them as they are, so a login typing them would never reach a `123` stored for them,
    and `١٢٣` stored beside `123` would be two accounts whose IDs read the same. Full-width
    digits are the one case NFKC maps, at creation and at login alike."""
    student_id = normalise_identifier(check_identifier("student_id", value, 64))
    if not STUDENT_ID.fullmatch(student_id):
        raise InvalidInput("student_id", "ASCII letters and digits only (such as 20012345); retype it")
    return student_id


def canonical_fiscal_code(value: str) -> str:
    """An Italian codice fiscale in its one stored form: NFKC, trimmed, upper case, 16 ASCII
    letters and digits with a valid check character. The `TINIT-` prefix SPID and CIE put on
    the fiscalNumber attribute (the ETSI EN 319 412-1 form) is dropped.

    An omocode (digits replaced by letters, DM 23/12/1976) is kept as it is: the Agenzia delle
    Entrate issues one to tell apart a *different* person whose code would otherwise be the
    same, so it names someone other than the base code does."""
    code = unicodedata.normalize("NFKC", check_identifier("fiscal_code", value, 64)).strip().upper()
    # Spaces inside, as a tessera sanitaria or a PDF groups the characters (RSS MRA 85T10 A562S).
    code = "".join(code.removeprefix("TINIT-").split())
    if not FISCAL_CODE.fullmatch(code) or not codicefiscale.is_valid(code):
        raise InvalidInput("fiscal_code", "not a valid Italian codice fiscale (16 letters and digits); check it")
    return code


def canonical_country(field: str, value: str) -> str:
    """An ISO 3166-1 alpha-2 country code, upper case, such as IT."""
    code = unicodedata.normalize("NFKC", check_identifier(field, value, 8)).strip()
    if not (len(code) == 2 and code.isascii() and code.isalpha() and code.upper() in iso_3166_countries()):
        raise InvalidInput(field, "not an ISO 3166-1 two-letter country code; give one such as IT")
    return code.upper()


@functools.cache
def iso_3166_countries() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 country codes, from the Unicode CLDR territories Babel ships
    (maintained with each CLDR release) less the codes ISO has not given to a country."""
    territories = Locale("en").territories
    return frozenset(
        code for code in territories if len(code) == 2 and code.isalpha() and not NOT_ISO_3166_COUNTRIES.fullmatch(code)
    )
