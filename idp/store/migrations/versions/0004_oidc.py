"""oidc clients, grants, refresh tokens, consents

Revision ID: 0004oidc
Revises: 0003saml
"""

import sqlalchemy as sa
from alembic import op

revision = '0004oidc'
down_revision = '0003saml'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oidc_clients',
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('first_party', sa.Boolean(), nullable=False),
    sa.Column('token_endpoint_auth_method', sa.String(length=32), nullable=False),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('post_logout_redirect_uris', sa.JSON(), nullable=False),
    sa.Column('grant_types', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('jwks', sa.JSON(), nullable=True),
    sa.Column('id_token_signed_response_alg', sa.String(length=8), nullable=False),
    sa.Column('access_token_format', sa.String(length=8), nullable=False),
    sa.Column('subject_type', sa.String(length=8), nullable=False),
    sa.Column('sector_identifier', sa.String(length=255), nullable=True),
    sa.Column('require_mfa', sa.Boolean(), nullable=False),
    sa.Column('require_pkce', sa.Boolean(), nullable=False),
    sa.Column('allow_fiscal_number', sa.Boolean(), nullable=False),
    sa.Column('backchannel_logout_uri', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('oidc_consents',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['oidc_clients.client_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'client_id')
    )
    with op.batch_alter_table('oidc_consents', schema=None) as batch_op:
        batch_op.create_index('ix_oidc_consents_client', ['client_id'], unique=False)

    op.create_table('oidc_grants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=True),
    sa.Column('auth_time', sa.Integer(), nullable=True),
    sa.Column('acr', sa.String(length=128), nullable=True),
    sa.Column('amr', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['oidc_clients.client_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('oidc_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_grants_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_grants_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_grants_sid'), ['sid'], unique=False)

    op.create_table('oidc_refresh_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('grant_id', sa.String(length=32), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['oidc_grants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('oidc_refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_refresh_tokens_grant_id'), ['grant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oidc_refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_refresh_tokens_grant_id'))

    op.drop_table('oidc_refresh_tokens')
    with op.batch_alter_table('oidc_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_grants_sid'))
        batch_op.drop_index(batch_op.f('ix_oidc_grants_client_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_grants_account_id'))

    op.drop_table('oidc_grants')
    with op.batch_alter_table('oidc_consents', schema=None) as batch_op:
        batch_op.drop_index('ix_oidc_consents_client')

    op.drop_table('oidc_consents')
    op.drop_table('oidc_clients')
