"""``varco sps``: register and inspect SAML service providers (INTERFACE.md).

Exit codes: 0 done, 1 failed (message on stderr), 2 bad usage or bad input naming the argument.
Uses the same ``SpRegistry`` the web endpoints read.
"""

from __future__ import annotations

import json
from typing import Any

import click

from idp.accounts.identifiers import printable
from idp.saml.registry import SpConfigError, SpConflictError, SpInputError, SpPolicy, SpRegistry, check_release
from idp.store.db import DatabaseUnavailable
from idp.store.ephemeral import EphemeralUnavailable


class Failed(click.ClickException):
    exit_code = 1


def registry(obj: Any) -> SpRegistry:
    """The registry of the instance ``varco`` was pointed at (``obj`` is idp.cli.Context)."""
    services = obj.services
    try:
        return SpRegistry(services.db, services.ephemeral, services.settings.home / "config" / "sps")
    except SpConfigError as exc:
        raise Failed(str(exc)) from exc


def emit(data: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        if isinstance(data, list):
            click.echo("\t".join(_flat(row[k]) for k in ("entity_id", "origin", "require_mfa", "release")))
        else:
            width = max(len(k) for k in row)
            for key, value in row.items():
                click.echo(f"{key.ljust(width)}  {_flat(value)}")


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(printable(str(v)) for v in value)
    return "" if value is None else printable(str(value))


def store_errors(fn):  # type: ignore[no-untyped-def]
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except SpInputError as exc:
            raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from exc
        except SpConflictError as exc:
            raise Failed(str(exc)) from exc
        except (DatabaseUnavailable, EphemeralUnavailable) as exc:
            raise Failed(f"store unavailable: {exc}") from exc

    return wrapper


@click.group()
def sps() -> None:
    """SAML service providers."""


@sps.command("add")
@click.option("--metadata", "source", required=True, metavar="FILE_OR_URL", help="The SP's metadata (https URL).")
@click.option("--require-mfa", is_flag=True, help="Always demand a second factor for this SP.")
@click.option("--release", multiple=True, metavar="ATTR", help="Attribute to release (repeat, or comma-separate).")
@click.option("--sign-response", is_flag=True, help="Sign the Response as well as the assertion.")
@click.option("--no-encrypt", is_flag=True, help="Never encrypt assertions, even if the SP has a key.")
@click.option("--replace", is_flag=True, help="Update an SP that is already registered.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@store_errors
def sps_add(
    obj: Any,
    source: str,
    require_mfa: bool,
    release: tuple[str, ...],
    sign_response: bool,
    no_encrypt: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Register a SAML SP from its metadata."""
    from idp.saml.registry import read_metadata_source

    policy = SpPolicy(require_mfa, check_release(release), sign_response, not no_encrypt)
    metadata = read_metadata_source(source)
    entry = registry(obj).add(metadata, policy, source=source, replace=replace)
    emit(entry.describe(), as_json)


@sps.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@store_errors
def sps_list(obj: Any, as_json: bool) -> None:
    """List registered SPs (database and config/sps/*.toml)."""
    entries = registry(obj).entries()
    emit([entries[e].describe() for e in sorted(entries)], as_json)


@sps.command("show")
@click.argument("entity_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@store_errors
def sps_show(obj: Any, entity_id: str, as_json: bool) -> None:
    """Show one SP: endpoints, keys and policy."""
    entry = registry(obj).entries().get(entity_id)
    if entry is None:
        raise Failed(f"{entity_id} is not a registered SP")
    emit(entry.describe(), as_json)


@sps.command("remove")
@click.argument("entity_id")
@click.pass_obj
@store_errors
def sps_remove(obj: Any, entity_id: str) -> None:
    """Remove an SP registered with `varco sps add`."""
    if not registry(obj).remove(entity_id):
        raise Failed(f"{entity_id} is not a registered SP")
    click.echo(f"{entity_id} removed")
