"""The `varco` command as operators script it: exit codes 0/1/2, --json, secrets from stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from idp.cli import cli


@pytest.fixture
def run(settings):
    """Invoke the CLI against the test instance (same database and ephemeral store as the app)."""
    env = {
        "VARCO_HOME": str(settings.home),
        "VARCO_DATABASE_URL": settings.database_url,
        "VARCO_REDIS_URL": settings.redis.url,
        "VARCO_REDIS_PREFIX": settings.redis.prefix,
        "VARCO_KEYS_DIR": settings.keys.dir,
    }

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


def add_mario(run, *extra: str, password: str | None = "Correct-Horse-9"):
    args = [
        "users",
        "add",
        "mario.rossi",
        "--given-name",
        "Mario",
        "--family-name",
        "Rossi",
        "--email",
        "mario.rossi@studenti.uni.example.it",
        *extra,
    ]
    if password is not None:
        args.append("--password-stdin")
    return run(*args, input=(password + "\n") if password is not None else None)


def test_users_add_then_show_as_json(run):
    result = add_mario(run, "--student-id", "20012345", "--citizenship", "IT", "--fiscal-code", "RSSMRA85T10H501O")
    assert result.exit_code == 0, result.output
    shown = run("users", "show", "20012345", "--json")
    assert shown.exit_code == 0
    data = json.loads(shown.output)
    assert data["username"] == "mario.rossi"
    assert data["fiscal_code"] == "RSSMRA85T10H501O"
    assert data["password_set"] is True
    assert "password_hash" not in data


def test_users_list_json_lists_accounts(run):
    add_mario(run)
    data = json.loads(run("users", "list", "--json").output)
    assert [row["username"] for row in data] == ["mario.rossi"]


def test_duplicate_username_fails_with_exit_1(run):
    assert add_mario(run).exit_code == 0
    again = add_mario(run)
    assert again.exit_code == 1
    assert "already" in again.output


@pytest.mark.parametrize(
    ("extra", "argument"),
    [
        (["--fiscal-code", "NOTAFISCALCODE00"], "--fiscal-code"),
        (["--citizenship", "IT"], "--fiscal-code"),
        (["--citizenship", "Italy"], "--citizenship"),
        (["--personal-email", "not-an-email"], "--personal-email"),
        (["--population", "alien"], "--population"),
    ],
)
def test_bad_input_exits_2_naming_the_argument(run, extra, argument):
    result = add_mario(run, *extra)
    assert result.exit_code == 2
    assert argument in result.output
    assert json.loads(run("users", "list", "--json").output) == []


def test_weak_password_on_stdin_is_refused_and_nothing_is_created(run):
    result = add_mario(run, password="password123")
    assert result.exit_code == 2
    assert "--password-stdin" in result.output
    assert json.loads(run("users", "list", "--json").output) == []


def test_empty_stdin_for_password_is_bad_input(run):
    result = run(
        "users",
        "add",
        "x.y",
        "--given-name",
        "X",
        "--family-name",
        "Y",
        "--email",
        "x@u.it",
        "--password-stdin",
        input="",
    )
    assert result.exit_code == 2


def test_show_unknown_user_fails_with_exit_1(run):
    result = run("users", "show", "nobody")
    assert result.exit_code == 1
    assert "no account" in result.output


def test_disable_and_enable(run, app):
    add_mario(run)
    assert run("users", "disable", "mario.rossi").exit_code == 0
    assert app.extensions["varco"].accounts.find("mario.rossi").status == "disabled"
    assert run("users", "enable", "mario.rossi").exit_code == 0
    assert app.extensions["varco"].accounts.find("mario.rossi").status == "active"


def test_temp_password_is_printed_once_and_works(run, app):
    from tests.support.pages import Browser

    add_mario(run)
    result = run("users", "temp-password", "mario.rossi")
    assert result.exit_code == 0
    temporary = result.output.strip()
    assert len(temporary) >= 12
    page = Browser(app.test_client()).login("mario.rossi", temporary)
    assert page.location.startswith("/login?flow=")


def test_unlock_clears_the_failed_login_counter(run, app):
    from tests.support.pages import Browser

    add_mario(run)
    svc = app.extensions["varco"]
    for _ in range(svc.settings.login.failed_attempts_per_account):
        Browser(app.test_client()).login("mario.rossi", "wrong-password-1")
    assert Browser(app.test_client()).login("mario.rossi", "Correct-Horse-9").status == 429
    assert run("users", "unlock", "mario.rossi").exit_code == 0
    assert Browser(app.test_client()).login("mario.rossi", "Correct-Horse-9").status == 303


def test_unknown_command_is_usage_error_exit_2(run):
    assert run("users", "frobnicate").exit_code == 2


def test_init_is_idempotent_and_keys_are_private(tmp_path):
    env = {**os.environ, "VARCO_HOME": str(tmp_path)}
    env.pop("VARCO_DATABASE_URL", None)
    env.pop("VARCO_REDIS_URL", None)
    varco = [sys.executable, "-m", "idp.cli"]
    first = subprocess.run([*varco, "init"], env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert "created RSA signing key" in first.stdout
    second = subprocess.run([*varco, "init"], env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0
    assert "created" not in second.stdout
    keys = tmp_path / "keys"
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    for path in keys.iterdir():
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    listed = subprocess.run([*varco, "keys", "list", "--json"], env=env, capture_output=True, text=True, check=True)
    kinds = sorted(k["alg"] for k in json.loads(listed.stdout))
    assert kinds == ["ES256", "RS256"]


def test_bad_setting_stops_with_one_line_naming_it(tmp_path):
    env = {**os.environ, "VARCO_HOME": str(tmp_path), "VARCO_PASSWORDS_MIN_LENGTH": "three"}
    result = subprocess.run([sys.executable, "-m", "idp.cli", "init"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "passwords.min_length" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_totp_secret_enrols_the_app_for_migrations(run, app):
    import pyotp

    secret = pyotp.random_base32()
    assert add_mario(run, "--totp-secret", secret).exit_code == 0
    account = app.extensions["varco"].accounts.find("mario.rossi")
    assert app.extensions["varco"].mfa.verify_totp(account.id, pyotp.TOTP(secret).now())


def test_bad_totp_secret_is_bad_input_and_creates_nothing(run):
    result = add_mario(run, "--totp-secret", "not base32!")
    assert result.exit_code == 2
    assert "--totp-secret" in result.output
    assert json.loads(run("users", "list", "--json").output) == []


def test_reset_2fa_removes_every_factor(run, app):
    import pyotp

    add_mario(run, "--totp-secret", pyotp.random_base32())
    account = app.extensions["varco"].accounts.find("mario.rossi")
    assert run("users", "reset-2fa", "mario.rossi").exit_code == 0
    assert not app.extensions["varco"].mfa.has_factor(account.id)


def test_set_personal_email(run, app):
    add_mario(run)
    assert run("users", "set-personal-email", "mario.rossi", "Mario@Example.org").exit_code == 0
    assert app.extensions["varco"].accounts.find("mario.rossi").personal_email == "mario@example.org"
    bad = run("users", "set-personal-email", "mario.rossi", "nope")
    assert bad.exit_code == 2


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["users", "show", "mario\udcff"], "is not valid UTF-8"),
        (["users", "add", "x.y", "--given-name", "\udcffX", "--family-name", "Y", "--email", "x@u.it"], "UTF-8"),
        (["--home", "/tmp/\udcfe", "users", "list"], "is not valid UTF-8"),
    ],
)
def test_arguments_that_are_not_utf8_are_usage_errors(run, args, said):
    """Python hands such arguments over with surrogateescape; they stop before any store."""
    result = run(*args)
    assert result.exit_code == 2
    assert said in result.output
    assert "Traceback" not in result.output
    assert json.loads(run("users", "list", "--json").output) == []


@pytest.mark.parametrize(
    ("password", "said"),
    [
        (b"\xff\xfeCorrect-Horse-9\n", "standard input is not valid UTF-8"),
        (b"Correct\x01Horse-9\n", "contains control characters"),
        (b"   \n", "required"),
    ],
)
def test_a_password_on_stdin_follows_the_login_form_rules(run, password, said):
    # (A password with a control character could never be typed into the login form.)
    args = ["users", "add", "x.y", "--given-name", "X", "--family-name", "Y", "--email", "x@u.it", "--password-stdin"]
    result = run(*args, input=password)
    assert result.exit_code == 2
    assert "--password-stdin" in result.output and said in result.output
    assert json.loads(run("users", "list", "--json").output) == []


def ascii_locale_env(settings) -> dict[str, str]:
    """The real command in an ASCII locale with Python's UTF-8 mode off: standard input is read
    with surrogateescape and standard output is ASCII."""
    return {
        **os.environ,
        "LC_ALL": "C",
        "PYTHONUTF8": "0",
        "PYTHONIOENCODING": "",
        "VARCO_HOME": str(settings.home),
        "VARCO_DATABASE_URL": settings.database_url,
        "VARCO_REDIS_URL": settings.redis.url,
        "VARCO_REDIS_PREFIX": settings.redis.prefix,
        "VARCO_KEYS_DIR": settings.keys.dir,
    }


def test_undecodable_stdin_read_with_surrogateescape_is_refused(settings):
    args = ["users", "add", "x.y", "--given-name", "X", "--family-name", "Y", "--email", "x@u.it", "--password-stdin"]
    done = subprocess.run(
        [sys.executable, "-m", "idp.cli", *args],
        input=b"\xff\xfeCorrect-Horse-9\n",
        capture_output=True,
        env=ascii_locale_env(settings),
    )
    assert done.returncode == 2, done.stderr
    assert b"not valid UTF-8" in done.stderr and b"Traceback" not in done.stderr


def test_names_outside_ascii_are_shown_in_an_ascii_locale(run, settings):
    assert add_mario(run, "--given-name", "Niccolò").exit_code == 0
    env = ascii_locale_env(settings)
    as_json = subprocess.run(
        [sys.executable, "-m", "idp.cli", "users", "show", "mario.rossi", "--json"], capture_output=True, env=env
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["given_name"] == "Niccolò"
    show = [sys.executable, "-m", "idp.cli", "users", "show", "mario.rossi"]
    as_text = subprocess.run(show, capture_output=True, env=env)
    assert as_text.returncode == 0, as_text.stderr
    assert "Niccolò".encode() in as_text.stdout  # click writes UTF-8 where the locale says ASCII


def test_field_errors_are_said_in_words(run):
    result = add_mario(run, "--student-id", "9" * 300)
    assert result.exit_code == 2
    assert "--student-id: too long" in result.output


def test_stored_values_are_printed_with_their_control_characters_escaped(run, app):
    # A value stored before its field was checked (or by another tool) must not move the terminal's
    # cursor, recolour it, or break the tab-separated rows scripts read.
    from sqlalchemy import update

    from idp.oidc.models import OidcClientRecord
    from idp.store.models import Account

    assert add_mario(run).exit_code == 0
    assert run("clients", "add", "lms", "--redirect-uri", "https://lms.uni.example.it/cb").exit_code == 0
    db = app.extensions["varco"].db
    with db.session() as session:
        session.execute(update(Account).values(given_name="Mario\x1b[31m\nRed"))
        session.execute(update(OidcClientRecord).values(name="LMS\tfake\x07"))
    for args in (("users", "show", "mario.rossi"), ("users", "list"), ("clients", "list"), ("clients", "show", "lms")):
        output = run(*args).output
        assert "\x1b" not in output and "\x07" not in output, args
    assert "Mario\\x1b[31m\\nRed" in run("users", "show", "mario.rossi").output
    rows = run("clients", "list").output.strip().splitlines()
    assert len(rows) == 1 and "LMS\\tfake\\x07" in rows[0]
