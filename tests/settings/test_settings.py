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
