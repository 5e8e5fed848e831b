"""Refresh tokens remember the access token issued with them, so revoking a family revokes those too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:22:08.707842
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_token_jti', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('access_token_expires_at', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_column('access_token_expires_at')
        batch_op.drop_column('access_token_jti')

