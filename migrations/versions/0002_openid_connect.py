"""OpenID Connect: nonce, auth_time and sid on codes and refresh tokens; post-logout redirect URIs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:40:51.222634
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nonce', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('auth_time', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sid', sa.String(length=64), nullable=True))

    # Existing clients get an empty list; the default is dropped again so the model stays the source.
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('post_logout_redirect_uris', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.alter_column('post_logout_redirect_uris', server_default=None)

    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auth_time', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sid', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_column('sid')
        batch_op.drop_column('auth_time')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('post_logout_redirect_uris')

    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('sid')
        batch_op.drop_column('auth_time')
        batch_op.drop_column('nonce')

