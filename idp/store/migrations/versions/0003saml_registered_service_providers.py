"""registered SAML service providers

Revision ID: 0003saml
Revises: 0002mfa
"""

import sqlalchemy as sa
from alembic import op

revision = "0003saml"
down_revision = "0002mfa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saml_sps",
        sa.Column("entity_id", sa.String(length=1024), nullable=False),
        sa.Column("metadata_xml", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=2048), nullable=False),
        sa.Column("require_mfa", sa.Boolean(), nullable=False),
        sa.Column("release", sa.JSON(), nullable=False),
        sa.Column("sign_response", sa.Boolean(), nullable=False),
        sa.Column("encrypt", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity_id"),
    )


def downgrade() -> None:
    op.drop_table("saml_sps")
