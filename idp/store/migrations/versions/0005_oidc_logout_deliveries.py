"""back-channel logout deliveries still owed to clients

Revision ID: 0005bclogout
Revises: 0004oidc
"""

import sqlalchemy as sa
from alembic import op

revision = "0005bclogout"
down_revision = "0004oidc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_logout_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("sub", sa.String(length=256), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_oidc_logout_deliveries_due_at", "oidc_logout_deliveries", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_logout_deliveries_due_at", table_name="oidc_logout_deliveries")
    op.drop_table("oidc_logout_deliveries")
