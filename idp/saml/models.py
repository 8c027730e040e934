"""SQL table of registered SAML service providers (the SP registry's durable half)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models import Base, utcnow


class RegisteredSp(Base):
    """One SP: its metadata as registered, and Varco's local policy for it."""

    __tablename__ = "saml_sps"

    entity_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    metadata_xml: Mapped[str] = mapped_column(Text)
    # Where the metadata came from (file path or URL), for operators.
    source: Mapped[str] = mapped_column(String(2048), default="")
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    # Friendly attribute names released besides what entity categories grant (attributes.ATTRIBUTES).
    release: Mapped[list] = mapped_column(JSON, default=list)
    sign_response: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypt: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
