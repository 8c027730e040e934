"""The SP registry: registered SPs in SQL and in ``config/sps/*.toml``, served from an in-process index.

Each SP's metadata is parsed once into a ``ServiceProvider``; requests read the index, never the XML.
Every change through ``add``/``remove`` writes a new random version token to the ephemeral store; each
process compares it with the version it loaded at most once a second and reloads when it differs, so
a ``varco sps add`` on one node reaches every web node within about a second.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import logging
import secrets
import threading
import time
import tomllib
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from idp.accounts.identifiers import CONTROL_CHARACTERS
from idp.ops import audit
from idp.saml.attributes import ATTRIBUTES
from idp.saml.errors import MalformedMessageError
from idp.saml.models import RegisteredSp
from idp.saml.sp import MAX_METADATA_BYTES, ServiceProvider, parse_sp_metadata
from idp.store.db import Database
from idp.store.ephemeral import Ephemeral

log = logging.getLogger("varco.saml")

VERSION_KEY = "saml:sps:version"
VERSION_TTL = 10 * 365 * 86400
CHECK_INTERVAL_SECONDS = 1.0
FETCH_TIMEOUT_SECONDS = 10
MAX_ENDPOINT_URL_LENGTH = 2000  # what browsers reliably carry in a form action or a redirect


class SpInputError(ValueError):
    """Bad input for a registration; ``field`` names the argument (``metadata``, ``release``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class SpConflictError(Exception):
    """The SP is already registered, or is defined in a file and cannot be changed from the CLI."""


class SpConfigError(Exception):
    """A ``config/sps/*.toml`` file is unusable; the message names the file and the fix."""


@dataclass(frozen=True)
class SpPolicy:
    """Varco's local decisions about one SP (not from its metadata)."""

    require_mfa: bool = False
    release: tuple[str, ...] = ()
    sign_response: bool = False
    encrypt: bool = True

    def as_fields(self) -> dict[str, object]:
        """The ``ServiceProvider`` local-policy fields."""
        return {
            "require_mfa": self.require_mfa,
            "release": frozenset(self.release),
            "sign_response": self.sign_response,
            "encrypt_assertions": self.encrypt,
        }


@dataclass(frozen=True)
class SpEntry:
    """A registered SP as operators see it: parsed metadata, policy, where it came from."""

    sp: ServiceProvider
    policy: SpPolicy
    source: str
    origin: str  # "database" or the config file's path

    def describe(self) -> dict[str, object]:
        sp = self.sp
        return {
            "entity_id": sp.entity_id,
            "name": sp.display_name,
            "origin": self.origin,
            "source": self.source,
            "require_mfa": self.policy.require_mfa,
            "release": list(self.policy.release),
            "sign_response": self.policy.sign_response,
            "encrypt": self.policy.encrypt,
            "acs": [e.location for e in sp.acs],
            "slo": [e.location for e in sp.slo],
            "authn_requests_signed": sp.authn_requests_signed,
            "signing_certificates": len(sp.signing_certs),
            "encryption_certificates": len(sp.encryption_certs),
            "entity_categories": sorted(sp.entity_categories),
        }


def check_release(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Friendly attribute names, each known; commas inside one value are accepted too."""
    found: list[str] = []
    for value in names:
        for name in (part.strip() for part in str(value).split(",")):
            if not name:
                continue
            if name not in ATTRIBUTES:
                raise SpInputError("release", f"unknown attribute {name!r}; known: {', '.join(sorted(ATTRIBUTES))}")
            if name not in found:
                found.append(name)
    return tuple(found)


def parse_metadata(xml: bytes, policy: SpPolicy) -> ServiceProvider:
    try:
        sp = parse_sp_metadata(xml, **policy.as_fields())
    except MalformedMessageError as exc:
        raise SpInputError("metadata", f"not usable SP metadata: {exc}") from None
    for kind, endpoints in (("AssertionConsumerService", sp.acs), ("SingleLogoutService", sp.slo)):
        for endpoint in endpoints:
            check_endpoint_url(f"{kind} Location", endpoint.location)
            if endpoint.response_location is not None:
                check_endpoint_url(f"{kind} ResponseLocation", endpoint.response_location)
    return sp


def check_endpoint_url(name: str, url: str) -> None:
    """The browser is sent to these; nothing but a plain http(s) URL may reach a form action or a redirect."""
    if len(url) > MAX_ENDPOINT_URL_LENGTH:
        raise SpInputError("metadata", f"{name} is longer than {MAX_ENDPOINT_URL_LENGTH} characters")
    if CONTROL_CHARACTERS.search(url) or any(ch.isspace() for ch in url):
        raise SpInputError("metadata", f"{name} {url!r} has spaces or control characters")
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:  # an unclosed or invalid [IPv6] host
        raise SpInputError("metadata", f"{name} {url!r} is not a valid URL ({exc})") from None
    if scheme not in ("http", "https"):
        raise SpInputError("metadata", f"{name} {url!r} is not an http(s) URL")


def _local_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_metadata_source(source: str) -> bytes:
    """Metadata bytes from a file path or URL. URLs must be https (http only to this machine, for tests)."""
    if not source:
        raise SpInputError("metadata", "is empty; give the SP's metadata file or https URL")
    try:
        parts = urlsplit(source)
        parts.port  # noqa: B018 (urlsplit checks the port only when asked for it)
    except ValueError as exc:  # an unclosed [IPv6] host, a port that is not a number from 0 to 65535
        raise SpInputError("metadata", f"{source}: not a valid URL ({exc})") from None
    if parts.scheme in ("http", "https"):
        if parts.scheme == "http" and not _local_host(parts.hostname or ""):
            raise SpInputError("metadata", f"{source}: metadata URLs must use https")
        request = urllib.request.Request(source, headers={"Accept": "application/samlmetadata+xml, */*"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
                data = response.read(MAX_METADATA_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise SpInputError("metadata", f"{source}: cannot fetch ({exc})") from None
    elif parts.scheme and len(parts.scheme) > 1:
        raise SpInputError("metadata", f"{source}: use a file path or an https:// URL")
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise SpInputError("metadata", f"{source}: cannot read ({exc.strerror or exc})") from None
        except ValueError as exc:  # a NUL byte in the path
            raise SpInputError("metadata", f"{source!r}: cannot read ({exc})") from None
    if len(data) > MAX_METADATA_BYTES:
        raise SpInputError("metadata", f"{source}: larger than {MAX_METADATA_BYTES} bytes")
    return data


def load_config_files(directory: Path) -> dict[str, SpEntry]:
    """``config/sps/*.toml``: ``metadata`` (a path, relative to the file) plus the policy keys."""
    entries: dict[str, SpEntry] = {}
    if not directory.is_dir():
        return entries
    known = {"metadata", "require_mfa", "release", "sign_response", "encrypt"}
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SpConfigError(f"{path}: not valid TOML ({exc}); fix or remove the file") from None
        unknown = set(raw) - known
        if unknown:
            raise SpConfigError(f"{path}: unknown key {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        if not isinstance(raw.get("metadata"), str):
            raise SpConfigError(f'{path}: metadata = "FILE" (the SP\'s metadata, relative to this file) is required')
        try:
            policy = SpPolicy(
                require_mfa=bool(raw.get("require_mfa", False)),
                release=check_release(list(raw.get("release", []))),
                sign_response=bool(raw.get("sign_response", False)),
                encrypt=bool(raw.get("encrypt", True)),
            )
            metadata_path = (path.parent / raw["metadata"]).resolve()
            sp = parse_metadata(read_metadata_source(str(metadata_path)), policy)
        except SpInputError as exc:
            raise SpConfigError(f"{path}: {exc.field}: {exc.message}") from None
        if sp.entity_id in entries:
            raise SpConfigError(f"{path}: {sp.entity_id} is already defined in {entries[sp.entity_id].origin}")
        entries[sp.entity_id] = SpEntry(sp, policy, str(metadata_path), str(path))
    return entries


def _fingerprint(row: RegisteredSp) -> str:
    material = json.dumps(
        [row.metadata_xml, row.require_mfa, sorted(row.release or []), row.sign_response, row.encrypt]
    )
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class _Index:
    loaded: bool = False
    version: str | None = None
    checked_at: float = float("-inf")
    entries: dict[str, SpEntry] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)


class SpRegistry:
    """Registered SPs: SQL rows (managed by ``varco sps``) over ``config/sps/*.toml`` files."""

    def __init__(self, db: Database, ephemeral: Ephemeral, config_dir: Path | None = None) -> None:
        self.db = db
        self.ephemeral = ephemeral
        self.files = load_config_files(config_dir) if config_dir is not None else {}
        self._index = _Index()
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------------
    def lookup(self, entity_id: str) -> ServiceProvider | None:
        """The SP for ``entity_id``, from the in-process index (reloaded when the registry changed)."""
        entry = self.entries().get(entity_id)
        return entry.sp if entry is not None else None

    def entries(self) -> dict[str, SpEntry]:
        self._refresh()
        return self._index.entries

    def _refresh(self) -> None:
        index = self._index
        if time.monotonic() - index.checked_at < CHECK_INTERVAL_SECONDS:
            return
        with self._lock:
            if time.monotonic() - self._index.checked_at < CHECK_INTERVAL_SECONDS:
                return
            version = self.ephemeral.get(VERSION_KEY)
            if not self._index.loaded or version != self._index.version:
                self._index = self._load(version, self._index)
            self._index.checked_at = time.monotonic()

    def _load(self, version: str | None, previous: _Index) -> _Index:
        with self.db.session() as session:
            rows = session.scalars(select(RegisteredSp)).all()
        entries = dict(self.files)
        fingerprints: dict[str, str] = {}
        for row in rows:
            fingerprint = _fingerprint(row)
            fingerprints[row.entity_id] = fingerprint
            kept = previous.entries.get(row.entity_id)
            if kept is not None and previous.fingerprints.get(row.entity_id) == fingerprint:
                entries[row.entity_id] = kept
                continue
            try:
                entries[row.entity_id] = self._entry(row)
            except SpInputError as exc:
                # Stored metadata was valid when added; a parser change may refuse it now. Skip, loudly.
                log.error("SAML SP %s skipped: %s", row.entity_id, exc.message)
        return _Index(loaded=True, version=version, entries=entries, fingerprints=fingerprints)

    @staticmethod
    def _entry(row: RegisteredSp) -> SpEntry:
        policy = SpPolicy(row.require_mfa, tuple(row.release or ()), row.sign_response, row.encrypt)
        return SpEntry(parse_metadata(row.metadata_xml.encode(), policy), policy, row.source, "database")

    def invalidate(self) -> None:
        """Forget when the version was last checked: the next lookup reads it again."""
        self._index.checked_at = float("-inf")

    # -- changing (the CLI and any console use these) -----------------------------------------------
    def add(
        self, metadata: bytes, policy: SpPolicy, *, source: str = "", replace: bool = False, actor: str = "cli"
    ) -> SpEntry:
        """Register an SP from its metadata. Everything is checked before anything is written; the row
        and its audit event are one transaction."""
        sp = parse_metadata(metadata, policy)
        try:
            metadata_text = metadata.decode("utf-8")
        except UnicodeDecodeError:
            raise SpInputError("metadata", "metadata must be UTF-8 encoded") from None
        if sp.entity_id in self.files:
            raise SpConflictError(f"{sp.entity_id} is defined in {self.files[sp.entity_id].origin}")
        with self.db.session() as session:
            row = session.get(RegisteredSp, sp.entity_id)
            if row is not None and not replace:
                raise SpConflictError(f"{sp.entity_id} is already registered (use --replace to update it)")
            existed = row is not None
            if row is None:
                row = RegisteredSp(entity_id=sp.entity_id)
                session.add(row)
            row.metadata_xml = metadata_text
            row.source = source[:2048]
            row.require_mfa = policy.require_mfa
            row.release = list(policy.release)
            row.sign_response = policy.sign_response
            row.encrypt = policy.encrypt
            detail = {"entity_id": sp.entity_id, "source": row.source, "policy": asdict(policy)}
            audit.record(session, "saml_sp_replaced" if existed else "saml_sp_added", actor, None, detail)
        self._bump()
        return SpEntry(sp, policy, source, "database")

    def remove(self, entity_id: str, *, actor: str = "cli") -> bool:
        if entity_id in self.files:
            raise SpConflictError(f"{entity_id} is defined in {self.files[entity_id].origin}; remove that file")
        with self.db.session() as session:
            result = session.execute(delete(RegisteredSp).where(RegisteredSp.entity_id == entity_id))
            removed = result.rowcount  # type: ignore[attr-defined]
            if removed:
                audit.record(session, "saml_sp_removed", actor, None, {"entity_id": entity_id})
        if removed:
            self._bump()
        return bool(removed)

    def _bump(self) -> None:
        self.ephemeral.set(VERSION_KEY, secrets.token_hex(8), VERSION_TTL)
        self.invalidate()
