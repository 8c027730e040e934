"""Durable OIDC records: registered clients, grants (token families), refresh tokens, consents.

Short-lived things (authorization codes, opaque access tokens, device codes, PAR request URIs,
replay guards) live in the ephemeral store instead (ARCHITECTURE.md, "State").
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models import Base, new_id, utcnow


class OidcClientRecord(Base):
    __tablename__ = "oidc_clients"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # sha256 of a generated high-entropy secret; None for public and private_key_jwt clients.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    jwks: Mapped[dict | None] = mapped_column(JSON)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="RS256")
    access_token_format: Mapped[str] = mapped_column(String(8), default="opaque")
    subject_type: Mapped[str] = mapped_column(String(8), default="public")
    sector_identifier: Mapped[str | None] = mapped_column(String(255))
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_fiscal_number: Mapped[bool] = mapped_column(Boolean, default=False)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OidcGrant(Base):
    """One authorization of a client by a person (or by itself): the family of every token issued from it."""

    __tablename__ = "oidc_grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("oidc_clients.client_id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str | None] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[int | None]
    acr: Mapped[str | None] = mapped_column(String(128))
    amr: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class OidcRefreshToken(Base):
    __tablename__ = "oidc_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oidc_grants.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OidcConsent(Base):
    """Scopes a person agreed to release to a client; asked again when a request needs more."""

    __tablename__ = "oidc_consents"

    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oidc_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_oidc_consents_client", "client_id"),)


class OidcLogoutDelivery(Base):
    """A back-channel logout still owed to a client: kept until the client acknowledges it or the
    retries run out, so a restart of Varco loses none (the token is signed afresh at each attempt)."""

    __tablename__ = "oidc_logout_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(128))
    sub: Mapped[str] = mapped_column(String(256))
    sid: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Epoch seconds: when the next attempt is due (also moved ahead while one worker is sending).
    due_at: Mapped[int] = mapped_column(BigInteger, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


__all__ = ["OidcClientRecord", "OidcConsent", "OidcGrant", "OidcLogoutDelivery", "OidcRefreshToken", "new_id"]
