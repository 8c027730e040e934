"""The two objects through which frontends (OIDC, SAML) and the login flow meet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoginRequest:
    """What a relying service asks of a login, in no protocol's words."""

    # Where the browser goes when the flow is done: a local path (a frontend's resume endpoint).
    return_to: str = "/account"
    protocol: str = "local"  # local | oidc | saml
    relying_party: str | None = None
    relying_party_name: str | None = None
    acr_values: tuple[str, ...] = ()
    require_mfa: bool = False
    force_authn: bool = False
    passive: bool = False
    max_age: int | None = None
    login_hint: str | None = None
    ui_locales: tuple[str, ...] = ()
    requested: tuple[str, ...] = ()
    # Opaque to the flow; the frontend keeps what it needs to resume here.
    protocol_state: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """For JSON: a shallow copy (dataclasses.asdict deep-copies every value first)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoginRequest:
        data = dict(data)
        for name in ("acr_values", "ui_locales", "requested"):
            data[name] = tuple(data.get(name) or ())
        return cls(**data)


@dataclass(frozen=True)
class AuthnResult:
    """How the person was authenticated; a frontend turns it into tokens or an assertion."""

    subject: str  # account id
    amr: tuple[str, ...]
    acr: str
    auth_time: int
    session_id: str
    upstream: dict[str, str] | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """For JSON: a shallow copy."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthnResult:
        data = dict(data)
        data["amr"] = tuple(data.get("amr") or ())
        return cls(**data)
