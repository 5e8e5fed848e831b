"""API keys: per account, stored as SHA-256 digests, with the key each one replaced on rotation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:02:41.518230
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=40), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('key_digest', sa.String(length=64), nullable=False),
        sa.Column('display_prefix', sa.String(length=16), nullable=False),
        sa.Column('last_four', sa.String(length=4), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sa.Integer(), nullable=True),
        sa.Column('last_used_at', sa.Integer(), nullable=True),
        sa.Column('rotated_from_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['rotated_from_id'], ['api_keys.id'], name=op.f('fk_api_keys_rotated_from_id_api_keys'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_keys_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('key_digest', name=op.f('uq_api_keys_key_digest')),
        sa.UniqueConstraint('public_id', name=op.f('uq_api_keys_public_id')),
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_user_id'))
    op.drop_table('api_keys')
