"""Usage metering: request counts per account, credential and hour, and the batch ids already applied.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 22:14:26.882112
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'usage_batches',
        sa.Column('batch_id', sa.String(length=64), nullable=False),
        sa.Column('received_at', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_usage_batches')),
    )
    with op.batch_alter_table('usage_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_batches_received_at'), ['received_at'], unique=False)

    op.create_table(
        'usage_counts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('credential', sa.String(length=64), nullable=False),
        sa.Column('hour', sa.Integer(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_counts')),
        sa.UniqueConstraint('account', 'credential', 'hour', name='uq_usage_counts_account_credential_hour'),
    )


def downgrade() -> None:
    op.drop_table('usage_counts')
    with op.batch_alter_table('usage_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_batches_received_at'))
    op.drop_table('usage_batches')
