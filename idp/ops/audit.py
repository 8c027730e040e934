"""The audit log: one row per security-relevant event, written in the same transaction as the change."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from idp.store.models import AuditEvent, utcnow

log = logging.getLogger("varco.audit")

# Built once: constructing a statement costs more CPU than running it, and this one runs on every login.
_INSERT = insert(AuditEvent.__table__)


def record(
    unit: Session | Connection,
    action: str,
    actor: str,
    account_id: str | None,
    detail: dict | None = None,
    remote_addr: str | None = None,
) -> None:
    """One audit row in the transaction of `unit` (an ORM session, or a Core connection such as
    `Database.transaction` gives), and its log line."""
    connection = unit.connection() if isinstance(unit, Session) else unit
    # A Core insert: no ORM bookkeeping on the login path.
    connection.execute(
        _INSERT,
        {
            "at": utcnow(),
            "action": action,
            "actor": actor,
            "account_id": account_id,
            "detail": detail or {},
            "remote_addr": remote_addr,
        },
    )
    log_event(action, actor, account_id, detail)


def log_event(action: str, actor: str, account_id: str | None, detail: dict | None) -> None:
    """The log line of an audit row (for a row written by a statement of the caller's own)."""
    log.info("%s actor=%s account=%s %s", action, actor, account_id, detail or "")
