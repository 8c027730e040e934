"""The client registry: one service for the CLI, `config/clients/*.toml` and the endpoints.

Client secrets are generated with 256 bits of entropy and stored as their SHA-256 (a slow hash adds
nothing to a secret nobody can guess); they are compared in constant time.

`config/clients/<name>.toml` registers (or updates) one client at start; the keys are the fields of
`NewClient`, and a secret is given only as its hash (required for a client_secret_basic or
client_secret_post client; `varco clients add` prints a secret once):

    client_id = "lms"
    name = "Learning platform"
    redirect_uris = ["https://lms.uni.example.it/oidc/callback"]
    post_logout_redirect_uris = ["https://lms.uni.example.it/"]
    backchannel_logout_uri = "https://lms.uni.example.it/oidc/backchannel"
    grant_types = ["authorization_code", "refresh_token"]
    scopes = ["openid", "profile", "email", "eduperson"]
    secret_sha256 = "<hex sha256 of the client secret>"
    first_party = true                 # no consent page
    # require_mfa, require_pkce (true), allow_fiscal_number, public, token_endpoint_auth_method,
    # jwks (private_key_jwt), id_token_signed_response_alg (RS256 | ES256),
    # access_token_format (opaque | jwt), subject_type (public | pairwise), sector_identifier
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import ipaddress
import logging
import re
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from idp.accounts.identifiers import InvalidInput, check_text, input_message
from idp.keys import same_text
from idp.oidc.config import (
    AUTH_METHODS,
    GRANT_TYPES,
    SCOPES,
    SIGNING_ALGS,
)
from idp.oidc.models import OidcClientRecord
from idp.oidc.rfc7523 import UnusableKeys, check_client_jwks
from idp.ops.audit import record
from idp.store.db import Database

log = logging.getLogger("varco.oidc")
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# RFC 1123 2.1: a host name label is letters, digits and hyphens, neither first nor last a hyphen.
HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
NAME_LENGTH = OidcClientRecord.__table__.c.name.type.length
SECTOR_LENGTH = OidcClientRecord.__table__.c.sector_identifier.type.length


class ClientError(Exception):
    """A client registration is invalid; `field` names the offending setting."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class ClientNotFound(Exception):
    pass


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewClient:
    client_id: str
    redirect_uris: tuple[str, ...] = ()
    name: str = ""
    public: bool = False
    secret: str | None = None
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    scopes: tuple[str, ...] = ("openid", "profile", "email", "offline_access")
    token_endpoint_auth_method: str | None = None
    jwks: dict | None = None
    first_party: bool = False
    require_mfa: bool = False
    require_pkce: bool = True
    allow_fiscal_number: bool = False
    id_token_signed_response_alg: str = "RS256"  # noqa: S105
    access_token_format: str = "opaque"  # noqa: S105
    subject_type: str = "public"
    sector_identifier: str | None = None
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None


# What each NewClient field must be in config/clients/*.toml (TOML types, before conversion).
FILE_TYPES: dict[str, type] = {
    **dict.fromkeys(
        ("client_id", "name", "secret", "token_endpoint_auth_method", "id_token_signed_response_alg",
         "access_token_format", "subject_type", "sector_identifier", "backchannel_logout_uri"),
        str,
    ),
    **dict.fromkeys(("public", "first_party", "require_mfa", "require_pkce", "allow_fiscal_number"), bool),
    **dict.fromkeys(("redirect_uris", "grant_types", "scopes", "post_logout_redirect_uris"), list),
    "jwks": dict,
}
FILE_TYPE_NAMES = {str: "a string", bool: "true or false", list: "a list", dict: "a table"}


@dataclass(frozen=True)
class Client:
    """A registered client as Authlib sees it (ClientMixin), immutable and cacheable."""

    client_id: str
    name: str
    secret_hash: str | None
    public: bool
    first_party: bool
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    jwks: dict | None
    id_token_signed_response_alg: str
    access_token_format: str
    subject_type: str
    sector_identifier: str | None
    require_mfa: bool
    require_pkce: bool
    allow_fiscal_number: bool
    backchannel_logout_uri: str | None
    source: str = "cli"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # Why the stored registration would be refused today (it was stored before a check it fails
    # was added), or None. The registry serves no such client to the endpoints.
    problem: str | None = field(default=None, compare=False)

    @classmethod
    def from_record(cls, row: OidcClientRecord) -> Client:
        values = {f.name: getattr(row, f.name) for f in fields(cls) if f.name not in ("extra", "problem")}
        for name in ("redirect_uris", "post_logout_redirect_uris", "grant_types", "scopes"):
            values[name] = tuple(values[name] or ())
        client = cls(**values)
        return dataclasses.replace(client, problem=stored_problem(client))

    # --- authlib ClientMixin ------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC Core 3.1.2.1: redirect_uri is required; never guess one.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 2.1 / OIDC Core 3.1.2.1: exact string comparison, nothing else.
        return any(same_text(redirect_uri, uri) for uri in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return same_text(hash_secret(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    @property
    def sector(self) -> str:
        """Pairwise subjects are computed per sector: the configured one, or the redirect URIs' host."""
        if self.sector_identifier:
            return self.sector_identifier
        hosts = sorted({urlsplit(uri).hostname or "" for uri in self.redirect_uris})
        return hosts[0] if hosts else self.client_id


def is_host(host: str) -> bool:
    """A DNS name (RFC 1123 2.1 labels) or an IP address, as `urlsplit(...).hostname` gives it."""
    if "%" in host:
        return False  # a percent-escape (or an IPv6 zone) names the same host in a second spelling
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.split(".")
    # A name whose last label is a number is read by browsers as a (here malformed) IPv4 address.
    return len(host) <= 253 and all(HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def validate_uri(field_name: str, uri: str, allow_custom_scheme: bool = False) -> None:
    """A URI Varco will send people or tokens to, compared exactly (RFC 9700 4.1.3)."""
    if len(uri) > 2000:
        raise ClientError(field_name, "longer than 2000 characters")
    # RFC 3986: a URI is printable ASCII; anything else must be percent-encoded (or IDNA in the host).
    if not uri.isascii() or any(ch <= " " or ch == "\x7f" for ch in uri):
        raise ClientError(field_name, f"{uri!r} has spaces, control or non-ASCII characters; percent-encode them")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # an unclosed or invalid [IPv6] host
        raise ClientError(field_name, f"{uri!r} is not a valid URI ({exc})") from None
    if parts.fragment or "#" in uri:
        raise ClientError(field_name, f"{uri!r} must not contain a fragment")  # RFC 6749 3.1.2
    if "@" in parts.netloc:
        raise ClientError(field_name, f"{uri!r} must not contain user information")
    if "*" in parts.netloc:
        raise ClientError(field_name, f"{uri!r}: no wildcards, such URIs are compared exactly")
    try:
        port = parts.port  # (urlsplit checks the port only when asked for it)
    except ValueError:
        raise ClientError(field_name, f"{uri!r} has an invalid port") from None
    if port == 0:
        raise ClientError(field_name, f"{uri!r} has an invalid port (0)")
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        # An IPv6 address, and only an IPv6 address, is written in brackets (RFC 3986 3.2.2).
        if not is_host(host) or parts.netloc.startswith("[") != (":" in host):
            raise ClientError(field_name, f"{uri!r}: the host must be a DNS name or an IP address")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname in {"localhost", "127.0.0.1", "::1"}:
        return  # RFC 8252 7.3 loopback
    if allow_custom_scheme and parts.scheme and "." in parts.scheme:
        return  # RFC 8252 7.1 private-use scheme (reverse domain name)
    raise ClientError(field_name, f"{uri!r} must be https (or http on localhost)")


def validate_text(field_name: str, value: str, max_length: int) -> None:
    """Text shown to people and printed in the CLI's tab-separated rows: no control characters."""
    try:
        check_text(field_name, value, max_length, required=False)
    except InvalidInput as exc:
        problem = f"longer than {max_length} characters" if exc.message == "too_long" else input_message(exc.message)
        raise ClientError(field_name, problem) from None


def validate_sector(sector: str) -> None:
    """The host whose clients share pairwise subjects (OIDC Core 8.1), as a redirect URI's host would give it."""
    if len(sector) > SECTOR_LENGTH:
        raise ClientError("sector_identifier", f"longer than {SECTOR_LENGTH} characters")
    if not is_host(sector):
        raise ClientError("sector_identifier", f"{sector!r} is not a host name; give one such as rp.uni.example.it")


def validated(new: NewClient) -> dict[str, Any]:
    if not CLIENT_ID.match(new.client_id or ""):
        raise ClientError("client_id", "1-128 characters from letters, digits and . _ : -")
    validate_text("name", new.name, NAME_LENGTH)
    for grant in new.grant_types:
        if grant not in GRANT_TYPES:
            raise ClientError("grant_type", f"unknown grant type {grant!r}; known: {', '.join(GRANT_TYPES)}")
    for scope in new.scopes:
        if scope not in SCOPES:
            raise ClientError("scope", f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    if "authorization_code" in new.grant_types and not new.redirect_uris:
        raise ClientError("redirect_uri", "at least one is required for the authorization_code grant")
    for uri in new.redirect_uris:
        validate_uri("redirect_uri", uri, allow_custom_scheme=new.public)
    for uri in new.post_logout_redirect_uris:
        validate_uri("post_logout_redirect_uri", uri, allow_custom_scheme=new.public)
    if new.backchannel_logout_uri:
        validate_uri("backchannel_logout_uri", new.backchannel_logout_uri)
    if new.sector_identifier is not None:
        validate_sector(new.sector_identifier)
    method = new.token_endpoint_auth_method or (
        "none" if new.public else "private_key_jwt" if new.jwks else "client_secret_basic"
    )
    if method not in AUTH_METHODS:
        raise ClientError("token_endpoint_auth_method", f"one of {', '.join(AUTH_METHODS)}")
    if new.public and method != "none":
        raise ClientError("public", "public clients authenticate with 'none' (and PKCE)")
    if new.public and "client_credentials" in new.grant_types:
        raise ClientError("grant_type", "client_credentials needs a confidential client")
    if method == "none" and not new.public:
        raise ClientError("token_endpoint_auth_method", "'none' is only for public clients")
    if method == "private_key_jwt" and not new.jwks:
        raise ClientError("jwks", "private_key_jwt needs the client's public keys (a JWK set)")
    if new.jwks is not None:
        try:
            check_client_jwks(new.jwks)
        except UnusableKeys as exc:
            raise ClientError("jwks", str(exc)) from None
    if new.public and new.secret:
        raise ClientError("secret", "public clients have no secret")
    if new.secret and not method.startswith("client_secret"):
        raise ClientError("secret", f"{method} clients authenticate with their keys, not a secret; give no secret")
    if new.id_token_signed_response_alg not in SIGNING_ALGS:
        raise ClientError("id_token_signed_response_alg", f"one of {', '.join(SIGNING_ALGS)}")
    if new.access_token_format not in ("opaque", "jwt"):
        raise ClientError("access_token_format", "opaque or jwt")
    if new.subject_type not in ("public", "pairwise"):
        raise ClientError("subject_type", "public or pairwise")
    if new.secret is not None and len(new.secret) < 32:
        raise ClientError("secret", "at least 32 characters (or let Varco generate one)")
    return {
        "client_id": new.client_id,
        "name": new.name or new.client_id,
        "public": new.public,
        "first_party": new.first_party,
        "token_endpoint_auth_method": method,
        "redirect_uris": list(new.redirect_uris),
        "post_logout_redirect_uris": list(new.post_logout_redirect_uris),
        "grant_types": list(dict.fromkeys(new.grant_types)),
        "scopes": list(dict.fromkeys(new.scopes)),
        "jwks": new.jwks,
        "id_token_signed_response_alg": new.id_token_signed_response_alg,
        "access_token_format": new.access_token_format,
        "subject_type": new.subject_type,
        "sector_identifier": new.sector_identifier,
        "require_mfa": new.require_mfa,
        "require_pkce": True if new.public else new.require_pkce,
        "allow_fiscal_number": new.allow_fiscal_number,
        "backchannel_logout_uri": new.backchannel_logout_uri,
    }


def stored_problem(client: Client) -> str | None:
    """What `validated` says of a stored registration now, or None if it would be accepted as it is.
    (Its secret is stored only as a hash, and was checked when it was given.)"""
    try:
        validated(NewClient(**{f.name: getattr(client, f.name) for f in fields(NewClient) if f.name != "secret"}))
    except ClientError as exc:
        return str(exc)
    return None


class ClientRegistry:
    # Endpoints look clients up on every request; a short in-process cache keeps that off the
    # database. Changes from another process (the CLI) apply within this many seconds.
    CACHE_SECONDS = 5.0

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Client | None]] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str | None) -> Client | None:
        """The client the endpoints may serve, or None (unknown, or stored with a `problem`)."""
        client = self.stored(client_id)
        return None if client is None or client.problem else client

    def stored(self, client_id: str | None) -> Client | None:
        """The stored registration as it is, `problem` included (what the CLI shows)."""
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            return None  # never registered, and never sent to the database as is
        now = time.monotonic()
        hit = self._cache.get(client_id)
        if hit and hit[0] > now:
            return hit[1]
        with self.db.session() as session:
            row = session.get(OidcClientRecord, client_id)
            client = Client.from_record(row) if row else None
        if client is not None and client.problem:
            # Fail closed: the endpoints treat it as unknown until it is registered again.
            log.warning(
                "OIDC client %r is not served: its stored registration is refused today (%s); "
                "register it again with `varco clients add %s --replace ...`",
                client_id, client.problem, client_id,
            )
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[client_id] = (now + self.CACHE_SECONDS, client)
        return client

    def require(self, client_id: str) -> Client:
        client = self.stored(client_id)
        if client is None:
            raise ClientNotFound(client_id)
        return client

    def list(self) -> builtins.list[Client]:
        with self.db.session() as session:
            rows = session.scalars(select(OidcClientRecord).order_by(OidcClientRecord.client_id)).all()
            return [Client.from_record(row) for row in rows]

    def add(
        self,
        new: NewClient,
        source: str = "cli",
        replace: bool = False,
        secret_sha256: str | None = None,
        generate_secret: bool = True,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and the generated secret (shown once), if one was generated.
        `secret_sha256` gives the secret as its hash instead (config/clients/*.toml). Without
        `generate_secret`, a client that needs a secret and is given none is refused (a secret
        made up where nobody sees it would leave the client unable to authenticate)."""
        values = validated(new)
        uses_secret = values["token_endpoint_auth_method"] in ("client_secret_basic", "client_secret_post")
        generated = None
        secret = new.secret
        if secret_sha256 is not None:
            if not uses_secret or secret or not SHA256_HEX.fullmatch(secret_sha256):
                raise ClientError(
                    "secret_sha256", "64 hex digits, only for a client_secret_basic or client_secret_post client"
                )
            values["secret_hash"] = secret_sha256.lower()
        else:
            if uses_secret and not secret:
                if not generate_secret:
                    method = values["token_endpoint_auth_method"]
                    raise ClientError("secret_sha256", f"required for {method}: the hex SHA-256 of the client's secret")
                secret = generated = secrets.token_urlsafe(32)
            values["secret_hash"] = hash_secret(secret) if secret else None
        with self.db.session() as session:
            row = session.get(OidcClientRecord, new.client_id)
            if row is not None and not replace:
                raise ClientError("client_id", f"{new.client_id!r} is already registered")
            if row is None:
                row = OidcClientRecord(source=source, **values)
                session.add(row)
            else:
                keeps_secret = values["token_endpoint_auth_method"].startswith("client_secret")
                if not new.secret and secret_sha256 is None and row.secret_hash and keeps_secret:
                    # Updated without a new secret: the one it has stays (nothing generated is shown).
                    values["secret_hash"] = row.secret_hash
                    generated = None
                for key, value in values.items():
                    setattr(row, key, value)
                row.source = source
            session.flush()
            client = Client.from_record(row)
            record(session, "oidc.client.registered", source, None, {"client_id": client.client_id})
        self._cache.pop(new.client_id, None)
        return client, generated

    def remove(self, client_id: str) -> None:
        with self.db.session() as session:
            row = session.get(OidcClientRecord, client_id)
            if row is None:
                raise ClientNotFound(client_id)
            session.delete(row)
            record(session, "oidc.client.removed", "cli", None, {"client_id": client_id})
        self._cache.pop(client_id, None)

    def load_directory(self, directory: Path) -> builtins.list[str]:
        """Register or update every client in `config/clients/*.toml`; secrets come as `secret_sha256`."""
        loaded = []
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ClientError(str(path), f"not valid TOML ({exc})") from exc
            secret_sha256 = data.pop("secret_sha256", None)
            known = {f.name for f in fields(NewClient)}
            unknown = set(data) - known
            if unknown:
                raise ClientError(str(path), f"unknown settings {', '.join(sorted(unknown))}")
            try:
                for key, kind in FILE_TYPES.items():
                    if key in data and not isinstance(data[key], kind):
                        raise ClientError(key, f"must be {FILE_TYPE_NAMES[kind]}")
                if secret_sha256 is not None and not isinstance(secret_sha256, str):
                    raise ClientError("secret_sha256", "must be a string")
                for key in ("redirect_uris", "grant_types", "scopes", "post_logout_redirect_uris"):
                    if key in data:
                        if not all(isinstance(item, str) for item in data[key]):
                            raise ClientError(key, "must be a list of strings")
                        data[key] = tuple(data[key])
                client, _ = self.add(
                    NewClient(**data), source="file", replace=True, secret_sha256=secret_sha256, generate_secret=False
                )
            except ClientError as exc:
                raise ClientError(f"{path}: {exc.field}", exc.message) from exc
            loaded.append(client.client_id)
        return loaded
