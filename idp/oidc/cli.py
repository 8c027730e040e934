"""`varco clients add|list|show|remove` (INTERFACE.md): the same ClientRegistry the web uses."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import click

from idp.oidc.clients import Client, ClientError, ClientNotFound, ClientRegistry, NewClient
from idp.oidc.config import AUTH_METHODS, GRANT_TYPES, SCOPES, SIGNING_ALGS
from idp.store.db import DatabaseUnavailable
from idp.store.ephemeral import EphemeralUnavailable

OPTION_NAMES = {
    "client_id": "CLIENT_ID",
    "redirect_uri": "--redirect-uri",
    "post_logout_redirect_uri": "--post-logout-redirect-uri",
    "backchannel_logout_uri": "--backchannel-logout-uri",
    "grant_type": "--grant-type",
    "scope": "--scope",
    "secret": "--secret-stdin",
    "public": "--public",
    "jwks": "--jwks",
    "token_endpoint_auth_method": "--auth-method",
    "id_token_signed_response_alg": "--id-token-alg",
    "access_token_format": "--access-token-format",
    "subject_type": "--subject-type",
}


class Failed(click.ClickException):
    exit_code = 1


# `idp.cli` attaches this group; the helpers are looked up when a command runs (not at import
# time), so `python -m idp.cli` does not import itself in a circle.
pass_ctx = click.pass_obj
Context = Any


def emit(data: Any, as_json: bool) -> None:
    from idp.cli import emit as varco_emit

    varco_emit(data, as_json)


def read_secret(flag: str) -> str:
    from idp.cli import read_secret as varco_read_secret

    return varco_read_secret(flag)


def registry(ctx: Context) -> ClientRegistry:
    return ClientRegistry(ctx.services.db)


def client_errors(fn):  # type: ignore[no-untyped-def]
    """Map registry errors to INTERFACE.md exit codes: 2 names the bad argument, 1 is a failure."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            hint = OPTION_NAMES.get(exc.field, f"--{exc.field.replace('_', '-')}")
            if "already registered" in exc.message:
                raise Failed(exc.message) from exc
            raise click.BadParameter(exc.message, param_hint=hint) from exc
        except ClientNotFound as exc:
            raise Failed(f"no client {exc.args[0]!r}") from exc
        except (DatabaseUnavailable, EphemeralUnavailable) as exc:
            raise Failed(f"store unavailable: {exc}") from exc

    return wrapper


def client_view(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "type": "public" if client.public else "confidential",
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
        "first_party": client.first_party,
        "require_mfa": client.require_mfa,
        "require_pkce": client.require_pkce,
        "allow_fiscal_number": client.allow_fiscal_number,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "access_token_format": client.access_token_format,
        "subject_type": client.subject_type,
        "sector_identifier": client.sector_identifier,
        "source": client.source,
        "problem": client.problem,
    }


def flat(view: dict[str, Any]) -> dict[str, Any]:
    return {k: " ".join(v) if isinstance(v, list) else v for k, v in view.items()}


@click.group()
def clients() -> None:
    """OpenID Connect clients (relying services)."""


@clients.command("add")
@click.argument("client_id")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI; repeat for more.")
@click.option("--name", default="", help="Name shown to people on consent and account pages.")
@click.option("--public", is_flag=True, help="Public client (SPA, native app): no secret, PKCE required.")
@click.option("--secret-stdin", is_flag=True, help="Read the client secret from standard input.")
@click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(GRANT_TYPES),
              help="Default: authorization_code and refresh_token.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES),
              help="Allowed scope; repeat. Default: openid profile email offline_access.")
@click.option("--require-mfa", is_flag=True, help="Every login for this client needs a second factor.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option("--backchannel-logout-uri")
@click.option("--first-party", is_flag=True, help="Operated by the university: no consent page.")
@click.option("--auth-method", type=click.Choice(AUTH_METHODS), help="Token endpoint authentication.")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JWK set file with the client's public keys (private_key_jwt).")
@click.option("--id-token-alg", type=click.Choice(SIGNING_ALGS), default="RS256", show_default=True)
@click.option("--access-token-format", type=click.Choice(["opaque", "jwt"]), default="opaque", show_default=True)
@click.option("--subject-type", type=click.Choice(["public", "pairwise"]), default="public", show_default=True)
@click.option("--sector-identifier", help="Host whose clients share pairwise subjects.")
@click.option("--allow-fiscal-number", is_flag=True, help="May receive the fiscal_number claim.")
@click.option("--no-pkce", is_flag=True, help="Do not require PKCE of this confidential client (not advised).")
@click.option("--replace", is_flag=True,
              help="Update an existing registration; its secret, grants and consents are kept.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@client_errors
def clients_add(ctx: Context, client_id: str, secret_stdin: bool, jwks_file: Path | None, replace: bool,
                as_json: bool, **options: Any) -> None:
    """Register a client (or, with --replace, update one). A generated secret is printed once; store it now."""
    secret = read_secret("--secret-stdin") if secret_stdin else None
    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.loads(jwks_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"not a JSON JWK set ({exc})", param_hint="--jwks") from exc
    new = NewClient(
        client_id=client_id,
        name=options["name"],
        redirect_uris=options["redirect_uris"],
        public=options["public"],
        secret=secret,
        grant_types=options["grant_types"] or NewClient.grant_types,
        scopes=options["scopes"] or NewClient.scopes,
        token_endpoint_auth_method=options["auth_method"],
        jwks=jwks,
        first_party=options["first_party"],
        require_mfa=options["require_mfa"],
        require_pkce=not options["no_pkce"],
        allow_fiscal_number=options["allow_fiscal_number"],
        id_token_signed_response_alg=options["id_token_alg"],
        access_token_format=options["access_token_format"],
        subject_type=options["subject_type"],
        sector_identifier=options["sector_identifier"],
        post_logout_redirect_uris=options["post_logout_redirect_uris"],
        backchannel_logout_uri=options["backchannel_logout_uri"],
    )
    client, generated = registry(ctx).add(new, replace=replace)
    view = client_view(client)
    if generated:
        view["client_secret"] = generated
    emit(view if as_json else flat(view), as_json)
    if generated and not as_json:
        click.echo("The client secret is shown only now; Varco keeps only its hash.", err=True)


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@client_errors
def clients_list(ctx: Context, as_json: bool) -> None:
    """List registered clients."""
    rows = [
        {"client_id": c.client_id, "name": c.name, "type": "public" if c.public else "confidential",
         "grant_types": " ".join(c.grant_types), "source": c.source, "problem": c.problem or ""}
        for c in registry(ctx).list()
    ]
    emit(rows, as_json)


@clients.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@client_errors
def clients_show(ctx: Context, client_id: str, as_json: bool) -> None:
    """Show one client's registration (never its secret)."""
    view = client_view(registry(ctx).require(client_id))
    emit(view if as_json else flat(view), as_json)


@clients.command("remove")
@click.argument("client_id")
@pass_ctx
@client_errors
def clients_remove(ctx: Context, client_id: str) -> None:
    """Remove a client, with its grants, refresh tokens and consents."""
    registry(ctx).remove(client_id)
    click.echo(f"{client_id} removed")
