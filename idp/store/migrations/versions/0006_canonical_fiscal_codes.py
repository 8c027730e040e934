"""fiscal codes in their canonical form

Revision ID: 0006fiscalcodes
Revises: 0005bclogout

Before this revision a fiscal code was stored as typed, upper-cased, once python-codicefiscale
accepted it; that library reads a code after slugifying it, so a code with a control character,
a zero-width space, a dash or a full-width letter in it passed, and was stored as it came: a
second account for the same person, one no upstream (SPID/CIE) login could find. Each such value
becomes the 16 letters and digits the library read. When that code is another account's already
(the older account keeps it), or is no valid code, the value is cleared instead. Every change is an
audit event that keeps the old value. Omocodes are codes of their own and stay as they are.
"""

import datetime as dt
import re
import unicodedata

import sqlalchemy as sa
from alembic import op
from codicefiscale import codicefiscale

revision = "0006fiscalcodes"
down_revision = "0005bclogout"
branch_labels = None
depends_on = None

CANONICAL = re.compile(r"[A-Z0-9]{16}")

accounts = sa.table(
    "accounts",
    sa.column("id", sa.String),
    sa.column("fiscal_code", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
audit_events = sa.table(
    "audit_events",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("action", sa.String),
    sa.column("actor", sa.String),
    sa.column("account_id", sa.String),
    sa.column("remote_addr", sa.String),
    sa.column("detail", sa.JSON),
)


def canonical(stored: str) -> str | None:
    """The code the library read in `stored` when it accepted it, if that is a valid code."""
    try:
        code = codicefiscale.decode_raw(unicodedata.normalize("NFKC", stored))["code"]
    except ValueError:
        return None
    return code if CANONICAL.fullmatch(code) and codicefiscale.is_valid(code) else None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(accounts.c.id, accounts.c.fiscal_code)
        .where(accounts.c.fiscal_code.is_not(None))
        .order_by(accounts.c.created_at, accounts.c.id)
    ).all()
    held = {stored for _id, stored in rows if canonical(stored) == stored}
    changes = []
    for account_id, stored in rows:
        code = canonical(stored)
        if code == stored:
            continue
        if code is not None and code not in held:
            held.add(code)
        else:
            code = None
        changes.append((account_id, stored, code))
    # Every old value out first, so that no new one meets it under the unique constraint.
    for account_id, _stored, _code in changes:
        conn.execute(accounts.update().where(accounts.c.id == account_id).values(fiscal_code=None))
    for account_id, stored, code in changes:
        if code is not None:
            conn.execute(accounts.update().where(accounts.c.id == account_id).values(fiscal_code=code))
        conn.execute(
            audit_events.insert().values(
                at=dt.datetime.now(dt.UTC),
                action="account.fiscal_code_normalised" if code else "account.fiscal_code_cleared",
                actor="migration 0006fiscalcodes",
                account_id=account_id,
                remote_addr=None,
                detail={"old": stored, "new": code},
            )
        )


def downgrade() -> None:
    # The canonical codes stay: the values they replaced are in the audit events.
    pass
