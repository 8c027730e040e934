"""User-facing messages for error codes, translated at render time."""

from flask_babel import lazy_gettext as _l

MESSAGES = {
    "required": _l("This field is required."),
    "too_long": _l("This field is too long."),
    "bad_encoding": _l("This field contains characters that could not be read."),
    "control_characters": _l("This field contains control characters, which are not allowed."),
    "invalid_credentials": _l("Incorrect username or password."),
    "account_disabled": _l("This account is disabled. Please contact the helpdesk."),
    "throttled": _l("Too many failed attempts. Wait a few minutes, then try again."),
    "mismatch": _l("The two passwords do not match."),
    "too_short": _l("The password is too short."),
    "too_common": _l("This password is too common or too easy to guess. Choose another one."),
    "contains_identifier": _l("The password must not contain your name, username or person code."),
    "same_as_current": _l("The new password must be different from the current one."),
    "missing": _l("The form was sent without its security token. Reload the page and try again."),
    "invalid": _l("The form's security token is not valid. Reload the page and try again."),
    "replayed": _l("This form has already been submitted. Start again from the login page."),
    "flow_expired": _l("Your login session has expired. Please start again."),
}


def message(code: str) -> str:
    return str(MESSAGES.get(code, code))
