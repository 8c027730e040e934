"""User-facing messages for error codes, translated at render time."""

from flask_babel import lazy_gettext as _l

MESSAGES = {
    "required": _l("This field is required."),
    "too_long": _l("This field is too long."),
    "bad_encoding": _l("This field contains characters that could not be read."),
    "bad_address": _l("The address of this page contains characters that could not be read."),
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
    "form_expired": _l("This form has expired. Reload the page and try again."),
    "flow_expired": _l("Your login session has expired. Please start again."),
    "code_format": _l("Enter the 6-digit code (or a recovery code such as abcde-fghjk)."),
    "wrong_code": _l("This code is not valid. Check it and try again."),
    "too_many_codes": _l("Too many wrong codes. For your security, start the login again."),
    "mfa_throttled": _l("Too many failed attempts on this account. Wait an hour, or contact the helpdesk."),
    "phone_format": _l("Enter a mobile number, e.g. +39 333 123 4567."),
    "sms_sent": _l("A code has been sent by SMS. It expires in 10 minutes."),
    "sms_resend_too_soon": _l("A code was sent less than a minute ago. Wait a moment before asking for another."),
    "sms_unavailable": _l("Codes by SMS cannot be sent right now. Use another method."),
    "passkey_failed": _l("The passkey could not be verified. Try again or use another method."),
    "unknown_action": _l("This choice is not available."),
    "unknown_broker": _l("This login method is not available."),
    "mfa_deactivated": _l("This service requires two-factor authentication, which is deactivated for your account."),
    "upstream_other_person": _l("The SPID/CIE/eIDAS identity you used belongs to another person."),
    "last_factor": _l("This is your only second factor and 2FA is required: add another one before removing it."),
    "unknown_factor": _l("This second factor does not exist."),
    "upstream_unknown_person": _l("No university account is linked to that identity."),
    "link_invalid": _l("This link is not valid: it has expired or has already been used."),
}


def message(code: str) -> str:
    return str(MESSAGES.get(code, code))
