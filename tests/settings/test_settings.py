"""Settings from TOML plus VARCO_* overrides, validated at start."""

from __future__ import annotations

import pytest

from idp.settings import SettingsError, load_settings


def write_config(home, text: str) -> None:
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "varco.toml").write_text(text)


def test_defaults_use_embedded_stores(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'varco.db'}"
    assert settings.redis.url == ""
    assert settings.passwords.argon2_memory_kib == 19456
    assert settings.passwords.argon2_time_cost == 2
    assert settings.passwords.argon2_parallelism == 1


def test_the_example_config_is_valid_and_documents_every_setting(tmp_path):
    from pathlib import Path

    example = (Path(__file__).parents[2] / "config" / "varco.example.toml").read_text()
    write_config(tmp_path, example)
    settings = load_settings(tmp_path, environ={})
    import dataclasses

    for section in dataclasses.fields(settings):
        if section.name == "home":
            continue
        assert f"[{section.name}]" in example
        for item in dataclasses.fields(getattr(settings, section.name)):
            assert f"\n{item.name} = " in example, f"{section.name}.{item.name} undocumented"


def test_environment_overrides_the_file(tmp_path):
    write_config(tmp_path, "[passwords]\nexpiry_days = 200\n")
    settings = load_settings(
        tmp_path,
        environ={
            "VARCO_PASSWORDS_EXPIRY_DAYS": "180",
            "VARCO_REDIS_URL": "redis://r:6379/1",
            "VARCO_I18N_LOCALES": "en,it",
            "VARCO_I18N_DEFAULT_LOCALE": "en",
        },
    )
    assert settings.passwords.expiry_days == 180
    assert settings.redis.url == "redis://r:6379/1"
    assert settings.i18n.locales == ("en", "it")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"VARCO_PASSWORDS_MIN_LENGTH": "three"}, "passwords.min_length"),
        ({"VARCO_PASSWORDS_MIN_LENGTH": "4"}, "passwords.min_length"),
        ({"VARCO_PASSWORDS_CONCURRENT_HASHES": "0"}, "passwords.concurrent_hashes"),
        ({"VARCO_PASSWORDS_CONCURRENT_HASHES": "65"}, "passwords.concurrent_hashes must be between 1 and 64"),
        ({"VARCO_PASSWORDS_ARGON2_MEMORY_KIB": "19456000"}, "passwords.argon2_memory_kib must be between"),
        ({"VARCO_PASSWORDS_ARGON2_TIME_COST": "0"}, "passwords.argon2_time_cost"),
        ({"VARCO_PASSWORDS_ARGON2_TIME_COST": "1000"}, "passwords.argon2_time_cost"),
        ({"VARCO_PASSWORDS_ARGON2_PARALLELISM": "0"}, "passwords.argon2_parallelism"),
        (
            {"VARCO_PASSWORDS_ARGON2_PARALLELISM": "4", "VARCO_PASSWORDS_ARGON2_MEMORY_KIB": "16"},
            "passwords.argon2_memory_kib must be at least 8 KiB per lane",
        ),
        ({"VARCO_OIDC_ACCESS_TOKEN_SECONDS": "10"}, "oidc.access_token_seconds"),
        ({"VARCO_OIDC_REFRESH_TOKEN_DAYS": "forever"}, "oidc.refresh_token_days"),
        ({"VARCO_OIDC_DEVICE_CODE_SECONDS": "7200"}, "oidc.device_code_seconds"),
        ({"VARCO_ISSUER": "ftp://x"}, "server.issuer"),
        ({"VARCO_DATABASE_URL": "mysql://x"}, "database.url"),
        ({"VARCO_REDIS_URL": "http://x"}, "redis.url"),
        ({"VARCO_SESSIONS_COOKIE_SECURE": "sometimes"}, "sessions.cookie_secure"),
        ({"VARCO_SERVER_METRICS_OPEN": "perhaps"}, "server.metrics_open"),
        ({"VARCO_I18N_DEFAULT_LOCALE": "fr"}, "i18n.default_locale"),
        # Every whole number has its range: a sign or a digit too many stops start-up.
        ({"VARCO_SERVER_TRUSTED_PROXIES": "-3"}, "server.trusted_proxies must be between 0 and 10"),
        ({"VARCO_SERVER_MAX_REQUEST_KIB": "-1"}, "server.max_request_kib"),
        ({"VARCO_DATABASE_POOL_SIZE": "0"}, "database.pool_size"),
        ({"VARCO_DATABASE_POOL_SIZE": "10000000000000000000000"}, "database.pool_size"),
        ({"VARCO_LOGIN_FAILED_ATTEMPTS_PER_ACCOUNT": "0"}, "login.failed_attempts_per_account"),
        ({"VARCO_LOGIN_FAILED_WINDOW_MINUTES": "-5"}, "login.failed_window_minutes"),
        ({"VARCO_LOGIN_MAX_IDENTIFIER_LENGTH": "0"}, "login.max_identifier_length"),
        ({"VARCO_LOGIN_PERSON_CODE_START": "-1"}, "login.person_code_start"),
        ({"VARCO_MFA_MAX_FAILURES_PER_ACCOUNT_HOUR": "0"}, "mfa.max_failures_per_account_hour"),
        ({"VARCO_PASSWORDS_REMINDER_DAYS": "-1"}, "passwords.reminder_days"),
        # Whole numbers are ASCII digits: not other scripts' digits, not Python's underscores.
        ({"VARCO_PASSWORDS_ARGON2_MEMORY_KIB": "\u0661\u0669\u0664\u0665\u0666"}, "passwords.argon2_memory_kib"),
        ({"VARCO_PASSWORDS_ARGON2_MEMORY_KIB": "1_9456"}, "passwords.argon2_memory_kib"),
        # URLs that cannot be parsed are named, not a traceback.
        ({"VARCO_ISSUER": "https://[::1"}, "server.issuer"),
        ({"VARCO_ISSUER": "https://idp.example.it:99999"}, "server.issuer"),
        ({"VARCO_REDIS_URL": "redis://:p@[::1"}, "redis.url"),
        ({"VARCO_SMTP_URL": "smtp://[x"}, "smtp.url"),
        ({"VARCO_SMTP_URL": "smtp://mail.uni.example.it:0"}, "smtp.url"),
        ({"VARCO_DATABASE_URL": "postgresqlgarbage"}, "database.url"),
        ({"VARCO_DATABASE_URL": "sqlite:garbage"}, "database.url"),
        ({"VARCO_MFA_SMS_GATEWAY_URL": "garbage"}, "mfa.sms_gateway_url"),
        (
            {"VARCO_MFA_SMS_GATEWAY_URL": "https://sms.example.it/send", "VARCO_MFA_SMS_GATEWAY_TEMPLATE": "{bad"},
            "mfa.sms_gateway_template",
        ),
        ({"VARCO_ORGANIZATION_NAME": " "}, "organization.name"),
        ({"VARCO_ORGANIZATION_HELPDESK_URL": "javascript:alert(1)"}, "organization.helpdesk_url"),
        # A variable that names no setting is a typo, as an unknown key in the file is.
        ({"VARCO_SERVER_BOGUS": "1"}, "VARCO_SERVER_BOGUS"),
        ({"VARCO_PASSWORDS_EXPIRY_DAYZ": "3"}, "VARCO_PASSWORDS_EXPIRY_DAYZ"),
    ],
)
def test_bad_values_name_the_setting(tmp_path, environ, named):
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(tmp_path, environ=environ)


def test_unknown_setting_in_the_file_is_refused(tmp_path):
    write_config(tmp_path, "[passwords]\nexpiry_dayz = 3\n")
    with pytest.raises(SettingsError, match=r"passwords\.expiry_dayz"):
        load_settings(tmp_path, environ={})


def test_broken_toml_is_refused_with_the_file_named(tmp_path):
    write_config(tmp_path, "[passwords\n")
    with pytest.raises(SettingsError, match="varco.toml"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize("value", ["inf", "1e400", "19456.9", '"19456x"', "true"])
def test_a_whole_number_in_the_file_is_a_toml_integer(tmp_path, value):
    # int() alone cut 19456.9 to 19456 without a word, and raised OverflowError for inf.
    write_config(tmp_path, f"[passwords]\nargon2_memory_kib = {value}\n")
    with pytest.raises(SettingsError, match=r"passwords\.argon2_memory_kib: expected a whole number"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize(
    "environ",
    [
        {"VARCO_DATABASE_URL": "mysql://varco:S3cretPW@db/varco"},
        {"VARCO_DATABASE_URL": "oracle://varco:S3cretPW@db/varco"},
        {"VARCO_REDIS_URL": "http://:S3cretPW@cache:6379/0"},
        {"VARCO_REDIS_URL": "redis://:S3cretPW@[::1"},
        {"VARCO_SMTP_URL": "http://mailer:S3cretPW@mail.example.it"},
    ],
)
def test_a_refused_url_is_named_without_its_password(tmp_path, environ):
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path, environ=environ)
    assert "S3cretPW" not in str(refused.value) and "\n" not in str(refused.value)


def test_the_settings_ranges_hold_the_defaults_and_name_real_settings():
    import dataclasses

    from idp.settings import LIMITS, Settings

    defaults = Settings()
    for setting, (low, high) in LIMITS.items():
        section, key = setting.split(".")
        assert low <= getattr(getattr(defaults, section), key) <= high, setting
    whole_numbers = {
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(Settings)
        if dataclasses.is_dataclass(section.default_factory)
        for f in dataclasses.fields(section.default_factory)
        if f.type in (int, "int")
    }
    assert whole_numbers == set(LIMITS)
