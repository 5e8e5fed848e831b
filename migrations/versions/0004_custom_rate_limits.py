"""Accounts get custom rate limits (per hour, per minute), used for the enterprise plan.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:50:37.670172
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limit_per_hour', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rate_limit_per_minute', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('rate_limit_per_minute')
        batch_op.drop_column('rate_limit_per_hour')
