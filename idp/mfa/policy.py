"""When a second factor is demanded: population rules, step-up triggers, the Italian-citizen rule."""

from __future__ import annotations

import datetime as dt

from idp.flow.request import LoginRequest
from idp.settings import MfaSettings
from idp.store.models import Account

ACR_MFA = "https://refeds.org/profile/mfa"
# OIDC clients may also ask with these names.
MFA_ACR_VALUES = frozenset({ACR_MFA, "mfa", "urn:varco:acr:mfa"})
SECOND_FACTORS = frozenset({"otp", "sms", "hwk", "swk", "spid", "cie", "eidas"})
UPSTREAM_STRONG = frozenset({"spid", "cie", "eidas"})


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite returns naive UTC datetimes
        return value.replace(tzinfo=dt.UTC)
    return value


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def deactivated(account: Account) -> bool:
    until = aware(account.mfa_deactivated_until)
    return until is not None and until > now()


def population_requires_mfa(account: Account, settings: MfaSettings) -> bool:
    """Seed 002: 2FA is demanded from the second successful login; some populations from the first."""
    if account.population in settings.first_login_populations:
        return True
    return account.population in settings.required_populations and account.login_count >= 2


def account_requires_mfa(account: Account, settings: MfaSettings) -> bool:
    """The account's own requirement, which "Deactivate 2FA" lifts for a while."""
    return population_requires_mfa(account, settings) and not deactivated(account)


def request_requires_mfa(request: LoginRequest) -> bool:
    """Step-up triggers: a relying service marked require_mfa, acr_values or REFEDS MFA AuthnContext."""
    return request.require_mfa or any(value in MFA_ACR_VALUES for value in request.acr_values)


def first_login_notice_due(account: Account, settings: MfaSettings) -> bool:
    return (
        account.population in settings.required_populations
        and account.population not in settings.first_login_populations
        and account.login_count == 1
    )


def spid_rule_applies(account: Account) -> bool:
    """Seed 003: an Italian citizen must use SPID or CIE unless a declared reason is still valid."""
    if account.citizenship != "IT":
        return False
    until = aware(account.spid_waiver_until)
    return until is None or until <= now()
