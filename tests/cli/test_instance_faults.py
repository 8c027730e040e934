"""The `varco` command on an instance that is not as it should be: damaged keys, a damaged or missing
database, a VARCO_HOME that is not a folder. Each is one line on stderr naming what is wrong and
what to do, exit 1, never a traceback; nothing is created where nothing was asked for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL, with_search_path

VARCO = [sys.executable, "-m", "idp.cli"]


def varco(home: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VARCO_")}
    environ.update({"VARCO_HOME": str(home), **env})
    return subprocess.run([*VARCO, *args], env=environ, input=stdin, capture_output=True, text=True, check=False)


def refused(result: subprocess.CompletedProcess, *said: str) -> str:
    """The one line of stderr of a command that failed (exit 1) saying each of `said`."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for words in said:
        assert words in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("instance")
    assert varco(home, "init").returncode == 0
    return home


@pytest.fixture
def home(initialised, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(initialised, copy)
    return copy


def signing_files(home: Path, suffix: str) -> list[Path]:
    manifest = json.loads((home / "keys" / "manifest.json").read_text())
    return [home / "keys" / f"{entry['kid']}{suffix}" for entry in manifest["keys"]]


# --- keys ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"c2hvcnQ=", b"not base64 at all!", b"A" * 44 + b"\n" + b"A" * 44])
def test_a_secret_key_that_is_not_32_bytes_is_refused_by_every_command(home, content):
    # An empty secret let anyone derive the cookie-signing and secret-encryption keys.
    (home / "keys" / "secret.key").write_bytes(content)
    for command in (["keys", "list"], ["users", "list"], ["keys", "init"], ["init"]):
        refused(varco(home, *command), "secret.key", "32-byte secret")


def test_a_secret_key_with_a_windows_line_ending_is_read(home):
    secret = home / "keys" / "secret.key"
    secret.write_bytes(secret.read_bytes().strip() + b"\r\n")
    assert varco(home, "keys", "list").returncode == 0


def test_a_keys_path_that_is_a_file_is_named(home):
    shutil.rmtree(home / "keys")
    (home / "keys").write_text("not a folder")
    for command in (["keys", "list"], ["keys", "init"], ["users", "list"]):
        refused(varco(home, *command), "is not a folder")


@pytest.mark.parametrize(
    "manifest", [b"{bad", b"[]", b'{"keys": "x"}', b'{"keys": [{"kid": "x"}]}', b'{"keys": [1]}', b"\xff\xfe"]
)
def test_a_damaged_manifest_is_named(home, manifest):
    (home / "keys" / "manifest.json").write_bytes(manifest)
    for command in (["keys", "list"], ["users", "list"], ["keys", "init"]):
        refused(varco(home, *command), "manifest.json", "restore it from a backup")


def test_a_missing_key_file_is_named_and_keys_init_does_not_call_the_keys_complete(home):
    missing = signing_files(home, ".pem")[0]
    missing.unlink()
    for command in (["keys", "list"], ["keys", "init"], ["users", "list"]):
        refused(varco(home, *command), missing.name, "is missing")


@pytest.mark.parametrize("junk", [b"", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", bytes(100)])
def test_a_damaged_key_file_is_found_when_the_keys_are_loaded_not_at_a_request(home, junk):
    for damaged in signing_files(home, ".pem"):
        original = damaged.read_bytes()
        damaged.write_bytes(junk)
        refused(varco(home, "keys", "list"), damaged.name, "not a private key")
        damaged.write_bytes(original)
    assert varco(home, "keys", "list").returncode == 0


def test_keys_swapped_between_kinds_or_a_certificate_of_another_key_are_refused(home):
    rsa_pem, ec_pem = signing_files(home, ".pem")
    rsa_bytes, ec_bytes = rsa_pem.read_bytes(), ec_pem.read_bytes()
    rsa_pem.write_bytes(ec_bytes)
    refused(varco(home, "keys", "list"), rsa_pem.name, "is not an RSA key")
    rsa_pem.write_bytes(rsa_bytes)
    certificate = signing_files(home, ".crt")[0]
    other = home.parent / "other"
    assert varco(other, "init").returncode == 0
    certificate.write_bytes(signing_files(other, ".crt")[0].read_bytes())
    refused(varco(home, "keys", "list"), certificate.name, "not the certificate")


def test_keys_readable_by_others_are_made_private_again_by_keys_init(home):
    for path in (home / "keys").iterdir():
        path.chmod(0o644)
    done = varco(home, "keys", "init")
    assert done.returncode == 0, done.stderr
    assert "permissions of secret.key set to 0600" in done.stdout
    assert all(path.stat().st_mode & 0o077 == 0 for path in (home / "keys").iterdir())


def test_an_organisation_name_longer_than_a_certificate_name_still_initialises(tmp_path):
    name = "Università degli Studi della Campania Luigi Vanvitelli e del Sannio"  # 68 characters
    done = varco(tmp_path, "init", VARCO_ORGANIZATION_NAME=name)
    assert done.returncode == 0, done.stderr
    assert varco(tmp_path, "keys", "list", VARCO_ORGANIZATION_NAME=name).returncode == 0


# --- the instance's folder and database --------------------------------------------------------
def test_init_makes_the_database_and_the_configuration_private(home):
    assert (home / "var" / "varco.db").stat().st_mode & 0o077 == 0
    assert (home / "config" / "varco.toml").stat().st_mode & 0o077 == 0
    assert (home / "var").stat().st_mode & 0o077 == 0


def test_a_command_on_an_instance_never_initialised_says_to_run_init_and_creates_nothing(tmp_path):
    refused(varco(tmp_path, "users", "list"), "no database at", "varco init")
    assert list(tmp_path.iterdir()) == []


def test_an_in_memory_database_is_not_taken_for_a_missing_file(home):
    refused(varco(home, "users", "list", VARCO_DATABASE_URL="sqlite://"), "no Varco tables", "varco init")


@pytest.mark.parametrize("kind", ["file", "config is a folder"])
def test_a_varco_home_that_is_not_an_instance_folder_is_one_line(tmp_path, kind):
    if kind == "file":
        home = tmp_path / "a-file"
        home.write_text("x")
    else:
        home = tmp_path / "home"
        (home / "config" / "varco.toml").mkdir(parents=True)
    for command in (["init"], ["keys", "init"], ["users", "list"]):
        result = varco(home, *command)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_damaged_database_file_is_named(home):
    (home / "var" / "varco.db").write_bytes(b"this is not an SQLite database" * 100)
    for command in (["users", "list"], ["init"], ["db", "upgrade"]):
        refused(varco(home, *command), "not an SQLite database")


def test_an_unreachable_database_is_one_line(home):
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    for command in (["db", "upgrade"], ["init"], ["users", "list"]):
        refused(varco(home, *command, VARCO_DATABASE_URL=unreachable), "127.0.0.1")


def test_a_postgresql_schema_without_tables_says_to_run_init(home):
    engine = create_engine(PG_URL)
    schema = f"varco_cli_{os.getpid()}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = with_search_path(PG_URL, schema)
        refused(varco(home, "users", "list", VARCO_DATABASE_URL=url), "no Varco tables", "varco init")
        refused(varco(home, "users", "show", "x", VARCO_DATABASE_URL=url), "no Varco tables")
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_a_database_migrated_by_a_newer_varco_is_named(home):
    import sqlite3

    with sqlite3.connect(home / "var" / "varco.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
    refused(varco(home, "db", "upgrade"), "cannot migrate the database")


# --- accounts --------------------------------------------------------------------------------------
def add(home: Path, username: str, *extra: str) -> subprocess.CompletedProcess:
    args = ["users", "add", username, "--given-name", "Ada", "--family-name", "Rossi"]
    return varco(home, *args, "--email", f"{username}@uni.example.it", *extra)


def test_users_list_says_when_it_shows_only_the_first_accounts(home):
    for name in ("anna", "bruno", "carla"):
        assert add(home, name).returncode == 0
    first = varco(home, "users", "list", "--limit", "2", "--json")
    assert [row["username"] for row in json.loads(first.stdout)] == ["anna", "bruno"]
    assert "the first 2 accounts only" in first.stderr
    whole = varco(home, "users", "list", "--limit", "3", "--json")
    assert len(json.loads(whole.stdout)) == 3 and whole.stderr == ""


def test_an_argument_is_named_as_the_command_names_it(home):
    bad_username = add(home, "ada\x01rossi")
    assert bad_username.returncode == 2
    assert "USERNAME" in bad_username.stderr and "--username" not in bad_username.stderr
    assert add(home, "ada").returncode == 0
    bad_email = varco(home, "users", "set-personal-email", "ada", "not-an-address")
    assert bad_email.returncode == 2
    assert "EMAIL" in bad_email.stderr and "--personal-email" not in bad_email.stderr


def test_times_are_shown_with_their_zone(home):
    shown = json.loads(add(home, "ada", "--json").stdout)
    again = json.loads(varco(home, "users", "show", "ada", "--json").stdout)
    assert shown["created_at"] == again["created_at"] and again["created_at"].endswith("+00:00")
