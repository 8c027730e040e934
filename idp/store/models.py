"""SQL models. Every schema change is an Alembic migration under `migrations/versions/`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, configure_mappers, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_Model = TypeVar("_Model", bound="Base")


def loaded(model: type[_Model], row: Mapping[str, Any]) -> _Model:
    """An instance of `model` holding `row` as loaded, committed state, belonging to no session, as
    the ORM's own loader builds one: no constructor, hence none of the per-attribute change events
    (a login builds an Account this way after every hash)."""
    configure_mappers()  # what the constructor would do first (a no-op once done)
    instance = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update(row)
    return instance


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(256), unique=True)
    person_code: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    student_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    personal_email: Mapped[str | None] = mapped_column(String(320))
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    population: Mapped[str] = mapped_column(String(16))
    citizenship: Mapped[str | None] = mapped_column(String(2))
    fiscal_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    password_changed_at: Mapped[dt.datetime | None]
    password_must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    login_count: Mapped[int] = mapped_column(Integer, default=0)
    # Second factor policy state (idp/mfa): "2FA via SPID/CIE/eIDAS", the Italian-citizen
    # declaration (seed 003) and the temporary deactivation through the personal e-mail.
    mfa_upstream: Mapped[bool] = mapped_column(Boolean, default=False)
    spid_waiver_reason: Mapped[str | None] = mapped_column(Text)
    spid_waiver_at: Mapped[dt.datetime | None]
    spid_waiver_until: Mapped[dt.datetime | None]
    mfa_deactivated_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    identifiers: Mapped[list[LoginIdentifier]] = relationship(back_populates="account", cascade="all, delete-orphan")

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class LoginIdentifier(Base):
    """Every normalised form a person may type to log in, unique across all accounts (seed 000)."""

    __tablename__ = "login_identifiers"

    value: Mapped[str] = mapped_column(String(320), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)

    account: Mapped[Account] = relationship(back_populates="identifiers")


class PersonCodeSequence(Base):
    """Portable sequence: a row per issued person code, so concurrent creations never collide."""

    __tablename__ = "person_code_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(256))
    account_id: Mapped[str | None] = mapped_column(String(32), index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class EphemeralEntry(Base):
    """Rows of the SQL-backed ephemeral store (the embedded default in place of Redis)."""

    __tablename__ = "ephemeral"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    counter: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_ephemeral_expires_at", "expires_at"),)


class MfaCredential(Base):
    """A second factor: a TOTP app, a phone for SMS codes, or a passkey."""

    __tablename__ = "mfa_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # totp | sms | webauthn
    label: Mapped[str] = mapped_column(String(100), default="")
    # TOTP secret, encrypted with the key from keys/ (AES-256-GCM bound to the credential id).
    secret_enc: Mapped[str | None] = mapped_column(Text)
    # RFC 6238 replay guard: the last accepted time step, raised atomically by a conditional UPDATE.
    last_counter: Mapped[int | None] = mapped_column(Integer)
    phone: Mapped[str | None] = mapped_column(String(20))
    webauthn_id: Mapped[str | None] = mapped_column(String(1400), unique=True)
    public_key: Mapped[str | None] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None]
