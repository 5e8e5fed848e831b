"""Refresh rotation grace window (the successor response, sealed) and indexes for pruning.

`refresh_tokens.successor` holds the response a rotation returned, encrypted under a key derived
from the presented refresh token, so that a retry within the grace window gets the same pair and
the database alone reveals nothing. The expiry indexes let the prune job delete in small batches.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 05:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('successor', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_refresh_tokens_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_codes_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_codes_expires_at'))
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_expires_at'))
        batch_op.drop_column('successor')
