"""Typed settings: `config/varco.toml` under VARCO_HOME, then `VARCO_<SECTION>_<NAME>` overrides.

Every setting is documented beside its default in `config/varco.example.toml`. A bad value stops
start-up with one line naming the setting and the fix (INTERFACE.md, "Instance").
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and says how to fix it."""


@dataclass(frozen=True)
class ServerSettings:
    issuer: str = "http://127.0.0.1:8080"
    # Number of reverse proxies in front of Varco whose X-Forwarded-* headers are trusted.
    trusted_proxies: int = 0
    max_request_kib: int = 256
    metrics_open: bool = False


@dataclass(frozen=True)
class DatabaseSettings:
    # Empty: SQLite at VARCO_HOME/var/varco.db.
    url: str = ""
    pool_size: int = 5


@dataclass(frozen=True)
class RedisSettings:
    # Empty: the SQL-backed ephemeral store in the durable database.
    url: str = ""
    prefix: str = "varco:"


@dataclass(frozen=True)
class SmtpSettings:
    # Empty: mail is written to the log instead of being sent.
    url: str = ""
    sender: str = "Varco <noreply@localhost>"


@dataclass(frozen=True)
class PasswordSettings:
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    concurrent_hashes: int = 1
    min_length: int = 8
    max_length: int = 256
    expiry_days: int = 365
    reminder_days: int = 10


@dataclass(frozen=True)
class SessionSettings:
    lifetime_minutes: int = 480
    remember_days: int = 30
    flow_ttl_minutes: int = 15
    # auto: Secure cookies when the request came over https; always / never force it.
    cookie_secure: str = "auto"


@dataclass(frozen=True)
class LoginSettings:
    max_identifier_length: int = 256
    failed_attempts_per_account: int = 10
    failed_window_minutes: int = 15
    person_code_start: int = 10000000


@dataclass(frozen=True)
class MfaSettings:
    # Populations that must use a second factor, from their second successful login (seed 002).
    required_populations: tuple[str, ...] = ("student", "staff", "guest")
    # Populations asked for a second factor from the very first login.
    first_login_populations: tuple[str, ...] = ()
    # NIST SP 800-63B AAL2 reauthentication: a second factor older than this is asked again.
    freshness_hours: int = 12
    # How long an Italian citizen's "Declare and continue without SPID/CIE" lets the local OTP be used.
    spid_waiver_days: int = 180
    # How long "Deactivate 2FA" lifts the account's own 2FA requirement.
    deactivation_hours: int = 24
    max_wrong_codes_per_flow: int = 5
    max_failures_per_account_hour: int = 100
    totp_issuer: str = "Varco"
    # SMS gateway: an HTTP URL with a JSON body template; empty: codes are written to sms_file.
    sms_gateway_url: str = ""
    sms_gateway_template: str = '{"to": {to}, "text": {text}}'
    sms_gateway_token: str = ""
    sms_file: str = "var/sms.log"


@dataclass(frozen=True)
class FederationSettings:
    # Mock SPID/CIE/eIDAS identity providers (demo and tests only): any of "spid", "cie", "eidas".
    mock_brokers: tuple[str, ...] = ()


@dataclass(frozen=True)
class I18nSettings:
    default_locale: str = "it"
    locales: tuple[str, ...] = ("it", "en")


@dataclass(frozen=True)
class KeySettings:
    # Relative paths are taken from VARCO_HOME.
    dir: str = "keys"


@dataclass(frozen=True)
class OrganizationSettings:
    name: str = "Università Demo"
    scope: str = "uni.example.it"
    helpdesk_url: str = ""


@dataclass(frozen=True)
class OidcSettings:
    # Lifetimes of what the OpenID provider issues (RFC 9700: short-lived access tokens).
    access_token_seconds: int = 600
    id_token_seconds: int = 600
    client_credentials_token_seconds: int = 600
    refresh_token_days: int = 30
    device_code_seconds: int = 600


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=Path.cwd)
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    passwords: PasswordSettings = field(default_factory=PasswordSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    login: LoginSettings = field(default_factory=LoginSettings)
    mfa: MfaSettings = field(default_factory=MfaSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    i18n: I18nSettings = field(default_factory=I18nSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    organization: OrganizationSettings = field(default_factory=OrganizationSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.home / 'var' / 'varco.db'}"

    @property
    def keys_dir(self) -> Path:
        return (self.home / self.keys.dir).resolve()

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "varco.toml"

    def replace(self, **sections: dict[str, typing.Any]) -> Settings:
        """A copy with some settings changed: `settings.replace(redis={"url": ""})`."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values) if isinstance(values, dict) else values
            for name, values in sections.items()
        }
        result = dataclasses.replace(self, **changed)
        _validate(result)
        return result


# The common overrides INTERFACE.md names, besides the general VARCO_<SECTION>_<NAME> form.
ALIASES = {
    "VARCO_DATABASE_URL": ("database", "url"),
    "VARCO_REDIS_URL": ("redis", "url"),
    "VARCO_ISSUER": ("server", "issuer"),
    "VARCO_SMTP_URL": ("smtp", "url"),
}


# The range of every whole-number setting: a typo (a sign, a digit too many) stops start-up instead
# of letting each login take gigabytes or minutes, a thread per request, or a limit that refuses
# everything. The largest argon2 memory is RFC 9106's first recommended option (2 GiB); the hashing
# threads per process are bounded in the same spirit (one per core is enough).
LIMITS: dict[str, tuple[int, int]] = {
    "server.trusted_proxies": (0, 10),
    "server.max_request_kib": (16, 100 * 1024),
    "database.pool_size": (1, 1000),
    "passwords.argon2_memory_kib": (8, 2 * 1024 * 1024),
    "passwords.argon2_time_cost": (1, 64),
    "passwords.argon2_parallelism": (1, 64),
    "passwords.concurrent_hashes": (1, 64),
    "passwords.min_length": (8, 1024),
    "passwords.max_length": (64, 4096),
    "passwords.expiry_days": (0, 3650),  # 0: passwords do not expire
    "passwords.reminder_days": (0, 365),
    "sessions.lifetime_minutes": (1, 366 * 24 * 60),
    "sessions.remember_days": (1, 400),  # browsers keep a cookie at most 400 days
    "sessions.flow_ttl_minutes": (1, 24 * 60),
    "login.max_identifier_length": (32, 1024),
    "login.failed_attempts_per_account": (1, 1000),
    "login.failed_window_minutes": (1, 7 * 24 * 60),
    "login.person_code_start": (1, 10**15),
    "mfa.freshness_hours": (1, 366 * 24),
    "mfa.spid_waiver_days": (1, 3650),
    "mfa.deactivation_hours": (1, 30 * 24),
    "mfa.max_wrong_codes_per_flow": (1, 100),
    "mfa.max_failures_per_account_hour": (1, 100_000),
    "oidc.access_token_seconds": (60, 86400),
    "oidc.id_token_seconds": (60, 86400),
    "oidc.client_credentials_token_seconds": (60, 86400),
    "oidc.refresh_token_days": (1, 365),
    # RFC 8628 3.2: long enough to walk to a device and type the code, short enough to be useless later.
    "oidc.device_code_seconds": (60, 1800),
}
# Environment variables of the VARCO_ prefix that are not settings.
NOT_SETTINGS = {"VARCO_HOME", "VARCO_DEBUG", "VARCO_TEST_DATABASE_URL", "VARCO_TEST_REDIS_URL"}
WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def load_settings(
    home: str | os.PathLike[str] | None = None, environ: typing.Mapping[str, str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    home_path = Path(home or environ.get("VARCO_HOME") or Path.cwd()).resolve()
    raw: dict[str, typing.Any] = {}
    config_file = home_path / "config" / "varco.toml"
    if config_file.exists():
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{config_file}: not valid TOML ({exc}); fix the file or remove it") from exc
    sections = {f.name: f for f in dataclasses.fields(Settings) if f.name != "home"}
    _refuse_unknown_variables(environ, sections)
    for name, value in raw.items():
        if name not in sections:
            raise SettingsError(f"[{name}] in {config_file}: unknown section; known: {', '.join(sections)}")
        if not isinstance(value, dict):
            raise SettingsError(f"{name} in {config_file}: must be a [section] table")
    built: dict[str, typing.Any] = {}
    for name in sections:
        section_type = typing.get_type_hints(Settings)[name]
        values = dict(raw.get(name, {}))
        known = {f.name for f in dataclasses.fields(section_type)}
        for key in values:
            if key not in known:
                raise SettingsError(
                    f"{name}.{key} in {config_file}: unknown setting; known: {', '.join(sorted(known))}"
                )
        for key in known:
            env_name = f"VARCO_{name.upper()}_{key.upper()}"
            if env_name in environ:
                values[key] = environ[env_name]
        for env_name, (section, key) in ALIASES.items():
            if section == name and env_name in environ:
                values[key] = environ[env_name]
        built[name] = _build_section(name, section_type, values)
    settings = Settings(home=home_path, **built)
    _validate(settings)
    return settings


def _refuse_unknown_variables(environ: typing.Mapping[str, str], sections: dict[str, typing.Any]) -> None:
    """A VARCO_<SECTION>_... variable that names no setting is a typo (as an unknown key in the TOML
    file is): taken silently, it would leave the setting it meant at its default."""
    hints = typing.get_type_hints(Settings)
    known = set(ALIASES) | NOT_SETTINGS
    for name in sections:
        known |= {f"VARCO_{name.upper()}_{f.name.upper()}" for f in dataclasses.fields(hints[name])}
    for variable in environ:
        section = next((name for name in sections if variable.startswith(f"VARCO_{name.upper()}_")), None)
        if section is not None and variable not in known:
            raise SettingsError(f"{variable}: no such setting in [{section}]; see config/varco.example.toml")


def _build_section(section: str, section_type: type, values: dict[str, typing.Any]) -> typing.Any:
    hints = typing.get_type_hints(section_type)
    converted = {key: _convert(f"{section}.{key}", hints[key], value) for key, value in values.items()}
    return section_type(**converted)


def _convert(name: str, target: typing.Any, value: typing.Any) -> typing.Any:
    origin = typing.get_origin(target)
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
        raise SettingsError(f"{name}: expected true or false, got {value!r}")
    if target is int:
        # A TOML integer, or ASCII digits from the environment: int() alone would also take 19456.9
        # (cut to 19456), "1_9456", other scripts' digits, and raise OverflowError for inf.
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
            return int(value.strip())
        raise SettingsError(f"{name}: expected a whole number, got {value!r}")
    if target is str:
        if not isinstance(value, str):
            raise SettingsError(f"{name}: expected a string, got {value!r}")
        return value
    if origin is tuple or origin is types.GenericAlias:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise SettingsError(f"{name}: expected a list, got {value!r}")
        return tuple(str(item).strip() for item in items if str(item).strip())
    raise SettingsError(f"{name}: unsupported setting type {target!r}")


def shown_url(url: str) -> str:
    """`url` with its password hidden, for a message."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
    except ValueError:
        return "(a URL that cannot be parsed)"


def _url_parts(setting: str, url: str, fix: str) -> typing.Any:
    """The parts of `url`, its port read (an invalid one raises there); SettingsError if it cannot be."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - read for its check
    except ValueError as exc:
        raise SettingsError(f"{setting}: {shown_url(url)!r} is not a valid URL ({exc}); {fix}") from None
    return parts


def _validate(settings: Settings) -> None:
    fix_issuer = "set VARCO_ISSUER=https://idp.example.edu"
    issuer = _url_parts("server.issuer", settings.server.issuer, fix_issuer)
    if issuer.scheme not in {"http", "https"} or not issuer.hostname or issuer.query or issuer.fragment:
        raise SettingsError(
            f"server.issuer: {settings.server.issuer!r} is not an http(s) URL without query or fragment; {fix_issuer}"
        )
    _validate_database_url(settings.database_url)
    if settings.redis.url:
        redis = _url_parts("redis.url", settings.redis.url, "fix VARCO_REDIS_URL")
        if redis.scheme not in {"redis", "rediss", "unix"}:
            raise SettingsError(
                f"redis.url: {shown_url(settings.redis.url)!r} must start with redis:// or rediss://; "
                "fix VARCO_REDIS_URL"
            )
    if settings.smtp.url:
        smtp = _url_parts("smtp.url", settings.smtp.url, "fix VARCO_SMTP_URL")
        if smtp.scheme not in {"smtp", "smtps"} or not smtp.hostname or smtp.port == 0:
            raise SettingsError(
                f"smtp.url: {shown_url(settings.smtp.url)!r} must be smtp://host:port or smtps://...; "
                "fix VARCO_SMTP_URL"
            )
    for setting, (low, high) in LIMITS.items():
        section, key = setting.split(".")
        if not low <= getattr(getattr(settings, section), key) <= high:
            raise SettingsError(f"{setting} must be between {low} and {high}")
    organization = settings.organization
    if not organization.name.strip() or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in organization.name):
        raise SettingsError("organization.name must be the organisation's name, without control characters")
    if organization.helpdesk_url:
        helpdesk = _url_parts("organization.helpdesk_url", organization.helpdesk_url, "give an https:// address")
        if helpdesk.scheme not in {"http", "https"} or not helpdesk.hostname:
            raise SettingsError("organization.helpdesk_url must be an http(s) address (it is a link on every page)")
    if settings.mfa.sms_gateway_url:
        from idp.mfa.sms import HttpSmsGateway

        try:
            HttpSmsGateway(settings.mfa.sms_gateway_url, settings.mfa.sms_gateway_template)
        except ValueError as exc:
            raise SettingsError(f"mfa.sms_gateway_url / mfa.sms_gateway_template: {exc}") from None
    p = settings.passwords
    if p.argon2_memory_kib < 8 * p.argon2_parallelism:
        raise SettingsError("passwords.argon2_memory_kib must be at least 8 KiB per lane (argon2_parallelism)")
    # NIST SP 800-63B 3.1.1.2: at least 8 characters; at least 64 must be accepted.
    if p.max_length < p.min_length:
        raise SettingsError("passwords.max_length must be at least passwords.min_length (NIST SP 800-63B: 8 and 64)")
    if p.reminder_days >= p.expiry_days > 0:
        raise SettingsError("passwords.reminder_days must be smaller than passwords.expiry_days")
    if settings.sessions.cookie_secure not in {"auto", "always", "never"}:
        raise SettingsError(f"sessions.cookie_secure: {settings.sessions.cookie_secure!r}; use auto, always or never")
    known = {"student", "staff", "guest", "service"}
    for key in ("required_populations", "first_login_populations"):
        unknown = set(getattr(settings.mfa, key)) - known
        if unknown:
            raise SettingsError(
                f"mfa.{key}: unknown population {', '.join(sorted(unknown))}; use {', '.join(sorted(known))}"
            )
    if set(settings.federation.mock_brokers) - {"spid", "cie", "eidas"}:
        raise SettingsError("federation.mock_brokers: use any of spid, cie, eidas")
    if not settings.i18n.locales or settings.i18n.default_locale not in settings.i18n.locales:
        raise SettingsError(f"i18n.default_locale {settings.i18n.default_locale!r} must be one of i18n.locales")
    unsupported = set(settings.i18n.locales) - {"it", "en"}
    if unsupported:
        raise SettingsError(f"i18n.locales: no translation for {', '.join(sorted(unsupported))}; use it and en")


def _validate_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    fix = "fix VARCO_DATABASE_URL (sqlite:///path or postgresql+psycopg://user@host/db)"
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - read for its check
    except (ArgumentError, ValueError):
        raise SettingsError(f"database.url: {shown_url(url)!r} is not a database URL; {fix}") from None
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise SettingsError(f"database.url: {parsed.render_as_string()!r} is neither sqlite nor postgresql; {fix}")
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() not in {"psycopg", "postgresql"}:
        # postgresql:// alone is psycopg2 for SQLAlchemy, which Varco does not install.
        raise SettingsError(f"database.url: {parsed.render_as_string()!r}: use postgresql+psycopg://; {fix}")
