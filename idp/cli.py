"""The `varco` command (INTERFACE.md). Exit codes: 0 done, 1 failed, 2 bad usage or bad input."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url

from idp.accounts.identifiers import InvalidInput, check_text, input_message, printable
from idp.accounts.passwords import PasswordRejected
from idp.accounts.service import POPULATIONS, AccountError, NewAccount
from idp.keys import KeyRing, KeysUnusable, init_keys
from idp.oidc.cli import clients
from idp.saml.cli import sps
from idp.settings import Settings, SettingsError, load_settings
from idp.store.db import Database, DatabaseUnavailable, SQLAlchemyError
from idp.store.ephemeral import EphemeralUnavailable

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "varco.example.toml"


class Failed(click.ClickException):
    exit_code = 1

    def format_message(self) -> str:
        return one_line(self.message)


def one_line(text: str) -> str:
    """`text` on one line: a driver's message (psycopg's has a hint on a line of its own) may not be."""
    return " ".join(str(text).split())


def store_failure(exc: Exception) -> str:
    """What a store's failure means to the operator, with the fix when there is one."""
    text = one_line(str(exc))
    if "no such table" in text or "UndefinedTable" in type(getattr(exc, "orig", None)).__name__ or (
        "relation" in text and "does not exist" in text
    ):
        return "the database has no Varco tables yet: run `varco init` (or `varco db upgrade`)"
    if "file is not a database" in text:
        return "the database file is not an SQLite database (damaged or another file): restore it from a backup"
    return f"a store is unavailable: {text}"


class Context:
    def __init__(self, home: str | None) -> None:
        self.home = home
        self._settings: Settings | None = None
        self._services: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.home)
            except SettingsError as exc:
                raise Failed(str(exc)) from exc
        return self._settings

    @property
    def services(self) -> Any:
        if self._services is None:
            from idp.app import build_services

            settings = self.settings
            database = make_url(settings.database_url).database
            if settings.database_url.startswith("sqlite:") and database not in (None, "", ":memory:"):
                path = Path(database)
                if not path.exists():  # (a typo in VARCO_HOME would otherwise create one)
                    raise Failed(f"no database at {path}: run `varco init` in the instance folder (VARCO_HOME)")
            try:
                self._services = build_services(settings)
            except KeysUnusable as exc:
                raise Failed(str(exc)) from exc
        return self._services


pass_ctx = click.make_pass_decorator(Context)


class VarcoGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Python reads arguments that are not UTF-8 with surrogateescape; nothing Varco stores
        # or compares can hold them, so they stop here (exit 2) rather than deep in a store.
        for position, arg in enumerate(args, start=1):
            if not _is_utf8(arg):
                shown = arg.encode("utf-8", "surrogateescape")
                raise click.UsageError(f"argument {position} ({shown!r}) is not valid UTF-8")
        return super().parse_args(ctx, args)


@click.group(cls=VarcoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="VARCO_HOME", help="Instance folder (config/, keys/, var/). Default: current folder.")
@click.pass_context
def cli(click_ctx: click.Context, home: str | None) -> None:
    """Varco, the university identity provider."""
    click_ctx.obj = Context(home)


cli.add_command(clients)  # `varco clients ...` (idp/oidc/cli.py)
cli.add_command(sps)  # `varco sps ...` (idp/saml/cli.py)


def main() -> None:
    """The command, with what escapes a command reported in one line (exit 1), not a traceback;
    VARCO_DEBUG=1 shows the traceback of an unexpected failure."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        cli(standalone_mode=True)
    except (DatabaseUnavailable, EphemeralUnavailable, SQLAlchemyError) as exc:
        fail(store_failure(exc))
    except OSError as exc:  # VARCO_HOME, config/ or keys/ not what they must be
        where = f" {exc.filename}" if exc.filename else ""
        fail(f"cannot use{where}: {exc.strerror or exc}; check VARCO_HOME and the instance's files")
    except Exception as exc:
        if os.environ.get("VARCO_DEBUG"):
            raise
        fail(f"unexpected failure ({type(exc).__name__}: {exc}); run again with VARCO_DEBUG=1 for the details")


def fail(message: str) -> None:
    click.echo(f"Error: {one_line(message)}", err=True)
    sys.exit(1)


def emit(data: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    elif isinstance(data, list):
        for row in data:
            click.echo("\t".join(printable(str(value if value is not None else "")) for value in row.values()))
    else:
        width = max(len(k) for k in data)
        for key, value in data.items():
            click.echo(f"{key.ljust(width)}  {printable(str(value if value is not None else ''))}")


# --- instance ------------------------------------------------------------------------------
def initialise(settings: Settings) -> list[str]:
    done: list[str] = []
    settings.config_file.parent.mkdir(parents=True, exist_ok=True)
    # Only Varco's user reads the instance's data (the database holds password hashes and encrypted
    # secrets; the configuration may hold the SMTP password and the SMS gateway's token).
    (settings.home / "var").mkdir(mode=0o700, parents=True, exist_ok=True)
    if not settings.config_file.exists():
        shutil.copyfile(EXAMPLE_CONFIG, settings.config_file)
        settings.config_file.chmod(0o600)
        done.append(f"wrote {settings.config_file}")
    done += [f"created {item}" for item in init_keys(settings.keys_dir, settings.organization.name)]
    Database(settings.database_url).upgrade()
    done.append("database schema is up to date")
    return done


@cli.command()
@pass_ctx
def init(ctx: Context) -> None:
    """Create config (if absent), keys and the database schema. Safe to run again."""
    try:
        for line in initialise(ctx.settings):
            click.echo(line)
    except KeysUnusable as exc:
        raise Failed(str(exc)) from exc
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        raise Failed(f"database: {store_failure(exc)}") from exc


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply migrations."""
    from alembic.util import CommandError

    try:
        Database(ctx.settings.database_url).upgrade()
    except CommandError as exc:  # e.g. a database migrated by a newer Varco
        raise Failed(f"cannot migrate the database: {exc}") from exc
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        raise Failed(f"database: {store_failure(exc)}") from exc
    click.echo("database schema is up to date")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@pass_ctx
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the instance with the development server (production: gunicorn)."""
    from werkzeug.serving import run_simple

    from idp.app import create_app
    from idp.oidc.clients import ClientError

    try:
        app = create_app(ctx.settings)
    except KeysUnusable as exc:
        raise Failed(str(exc)) from exc
    except ClientError as exc:  # a client file in config/clients/ (the message names it)
        raise Failed(str(exc)) from exc
    run_simple(host, port, app, threaded=True, use_reloader=False)


@cli.command()
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--no-serve", is_flag=True, help="Prepare the demo instance and exit.")
@pass_ctx
def demo(ctx: Context, port: int, host: str, no_serve: bool) -> None:
    """Create a throw-away demo instance with demo accounts and serve it."""
    from idp.demo import prepare_demo

    home = (Path(ctx.home) if ctx.home else Path.cwd()) / "var" / "demo"
    settings, lines = prepare_demo(home, f"http://{host}:{port}")
    for line in lines:
        click.echo(line)
    if no_serve:
        return
    import threading

    from werkzeug.serving import make_server, run_simple

    from idp.app import create_app
    from idp.demo_services import create_demo_services, register_demo_clients

    app = create_app(settings)
    services_url = f"http://localhost:{port + 1}"
    client_secrets = register_demo_clients(app.extensions["varco_oidc"].clients, services_url)
    demo_services = make_server(
        host, port + 1, create_demo_services(settings.server.issuer, services_url, client_secrets)
    )
    threading.Thread(target=demo_services.serve_forever, daemon=True).start()
    click.echo(f"\nVarco demo: http://{host}:{port}/login   (Ctrl-C to stop)")
    click.echo(f"Demo services signing in through Varco (OIDC): {services_url}/")
    click.echo("Mock SPID/CIE/eIDAS: the buttons on the login page; SAML metadata: /saml/metadata")
    run_simple(host, port, app, threaded=True, use_reloader=False)


# --- keys ------------------------------------------------------------------------------------
@cli.group()
def keys() -> None:
    """Signing and encryption keys."""


@keys.command("init")
@pass_ctx
def keys_init(ctx: Context) -> None:
    """Generate the keys that are missing (RSA 3072, EC P-256, secret-encryption key)."""
    try:
        created = init_keys(ctx.settings.keys_dir, ctx.settings.organization.name)
    except KeysUnusable as exc:
        raise Failed(str(exc)) from exc
    for item in created or ["all keys already present"]:
        click.echo(item)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def keys_list(ctx: Context, as_json: bool) -> None:
    """List signing keys."""
    try:
        ring = KeyRing.load(ctx.settings.keys_dir)
    except KeysUnusable as exc:
        raise Failed(str(exc)) from exc
    rows = [
        {"kid": k.kid, "kind": k.kind, "alg": k.alg, "status": k.status, "created": k.created} for k in ring.signing
    ]
    emit(rows, as_json)


# --- users -----------------------------------------------------------------------------------
@cli.group()
def users() -> None:
    """Accounts."""


def utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A stored time with its zone: SQLite gives back UTC times without one."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def account_view(account: Any, services: Any) -> dict[str, Any]:
    return {
        "id": account.id,
        "username": account.username,
        "person_code": account.person_code,
        "email": account.email,
        "student_id": account.student_id,
        "personal_email": account.personal_email,
        "given_name": account.given_name,
        "family_name": account.family_name,
        "population": account.population,
        "citizenship": account.citizenship,
        "fiscal_code": account.fiscal_code,
        "status": account.status,
        "password_set": account.password_hash is not None,
        "password_must_change": account.password_must_change,
        "password_expires_at": utc(services.accounts.password_expires_at(account)),
        "login_count": account.login_count,
        "last_login_at": utc(account.last_login_at),
        "created_at": utc(account.created_at),
    }


def read_secret(flag: str) -> str:
    """One line of standard input, held to the rules of the login form's fields."""
    if sys.stdin is None or sys.stdin.closed:
        raise click.BadParameter("nothing on standard input", param_hint=flag)
    try:
        value = sys.stdin.readline().rstrip("\r\n")
    except UnicodeDecodeError:  # (with surrogateescape, as in a C locale, the check below finds it)
        value = None
    if value is None or not _is_utf8(value):
        raise click.BadParameter("standard input is not valid UTF-8", param_hint=flag)
    if not value:
        raise click.BadParameter("standard input was empty", param_hint=flag)
    try:
        check_text(flag, value, 100_000)
    except InvalidInput as exc:
        raise click.BadParameter(input_message(exc.message), param_hint=flag) from None
    return value


def _is_utf8(value: str) -> bool:
    """False for text Python decoded with surrogateescape (bytes that were not UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def account_errors(fn):  # type: ignore[no-untyped-def]
    """Map service errors to the exit codes of INTERFACE.md."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            raise click.BadParameter(input_message(exc.message), param_hint=param_hint(exc.field)) from exc
        except PasswordRejected as exc:
            raise click.BadParameter(
                f"password refused: {exc.reason.replace('_', ' ')}", param_hint="--password-stdin"
            ) from exc
        except AccountError as exc:
            raise Failed(str(exc)) from exc
        except (DatabaseUnavailable, EphemeralUnavailable) as exc:
            raise Failed(store_failure(exc)) from exc

    return wrapper


def param_hint(field: str) -> str:
    """How the command being run names `field`: USERNAME for an argument, --email for an option."""
    for param in click.get_current_context().command.params:
        if param.name == field:
            return param.human_readable_name if isinstance(param, click.Argument) else param.opts[0]
    return f"--{field.replace('_', '-')}"


@users.command("add")
@click.argument("username")
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--email", required=True, help="Institutional e-mail address.")
@click.option("--personal-email", help="Personal address for password reset and 2FA deactivation.")
@click.option("--population", type=click.Choice(POPULATIONS), default="student", show_default=True)
@click.option("--student-id", help="Student serial number (matricola); also accepted at login.")
@click.option("--citizenship", help="ISO 3166 two-letter code, e.g. IT.")
@click.option("--fiscal-code", help="Italian codice fiscale (required with --citizenship IT).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--totp-secret", help="Enrol TOTP with this base32 secret (migrations and tests).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@account_errors
def users_add(
    ctx: Context, username: str, password_stdin: bool, totp_secret: str | None, as_json: bool, **fields: Any
) -> None:
    """Create an account."""
    if totp_secret is not None:
        totp_secret = totp_secret.replace(" ", "").upper()
        try:
            if len(totp_secret) < 16:
                raise ValueError
            base64.b32decode(totp_secret + "=" * (-len(totp_secret) % 8))
        except ValueError:
            raise click.BadParameter(
                "not a base32 secret of at least 16 characters", param_hint="--totp-secret"
            ) from None
    password = read_secret("--password-stdin") if password_stdin else None
    account = ctx.services.accounts.create(NewAccount(username=username, **fields), password, actor="cli")
    if totp_secret:
        ctx.services.mfa.enrol_totp_secret(account.id, totp_secret, actor="cli")
    emit(account_view(account, ctx.services), as_json)


@users.command("show")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@account_errors
def users_show(ctx: Context, username: str, as_json: bool) -> None:
    """Show an account (any identifier: username, person code, e-mail, student ID)."""
    emit(account_view(ctx.services.accounts.require(username), ctx.services), as_json)


@users.command("list")
@click.option("--population", type=click.Choice(POPULATIONS))
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@account_errors
def users_list(ctx: Context, population: str | None, limit: int, as_json: bool) -> None:
    """List accounts, by username."""
    accounts = ctx.services.accounts.list(population, limit=limit + 1)
    if len(accounts) > limit:
        accounts = accounts[:limit]
        click.echo(f"(the first {limit} accounts only: use --limit to see more)", err=True)
    rows = [
        {
            "username": a.username,
            "person_code": a.person_code,
            "email": a.email,
            "population": a.population,
            "status": a.status,
        }
        for a in accounts
    ]
    emit(rows, as_json)


@users.command("disable")
@click.argument("username")
@pass_ctx
@account_errors
def users_disable(ctx: Context, username: str) -> None:
    """Disable an account: no login succeeds until it is enabled again."""
    account = ctx.services.accounts.set_status(username, "disabled", actor="cli")
    click.echo(f"{account.username} disabled")


@users.command("enable")
@click.argument("username")
@pass_ctx
@account_errors
def users_enable(ctx: Context, username: str) -> None:
    """Enable a disabled account."""
    account = ctx.services.accounts.set_status(username, "active", actor="cli")
    click.echo(f"{account.username} enabled")


@users.command("unlock")
@click.argument("username")
@pass_ctx
@account_errors
def users_unlock(ctx: Context, username: str) -> None:
    """Clear the failed-login counter of an account."""
    account = ctx.services.accounts.unlock(username, actor="cli")
    click.echo(f"{account.username} unlocked")


@users.command("temp-password")
@click.argument("username")
@pass_ctx
@account_errors
def users_temp_password(ctx: Context, username: str) -> None:
    """Issue a temporary password (printed once) that must be changed at the next login."""
    click.echo(ctx.services.accounts.issue_temporary_password(username, actor="cli"))


@users.command("reset-2fa")
@click.argument("username")
@pass_ctx
@account_errors
def users_reset_2fa(ctx: Context, username: str) -> None:
    """Remove every second factor and recovery code: the user enrols again at the next login."""
    account = ctx.services.accounts.require(username)
    ctx.services.mfa.reset(account.id, actor="cli")
    click.echo(f"{account.username}: second factors removed")


@users.command("set-personal-email")
@click.argument("username")
@click.argument("personal_email", metavar="EMAIL")
@pass_ctx
@account_errors
def users_set_personal_email(ctx: Context, username: str, personal_email: str) -> None:
    """Set the personal e-mail used for password reset and 2FA deactivation (seed 001)."""
    account = ctx.services.accounts.set_personal_email(username, personal_email, actor="cli")
    click.echo(f"{account.username}: personal e-mail set")


if __name__ == "__main__":
    main()
