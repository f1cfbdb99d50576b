"""server-side web sessions and sign-in throttling per (account, address) and address

The account-wide lock (user.failed_logins, user.locked_until) goes: anyone could lock any
account out for everyone with it.

Revision ID: 8e3b5f7a2c19
Revises: 7d2a9c4e1f06
Create Date: 2026-12-03 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '8e3b5f7a2c19'
down_revision = '7d2a9c4e1f06'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'web_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sid_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sid_hash'),
    )
    op.create_index(op.f('ix_web_session_user_id'), 'web_session', ['user_id'], unique=False)
    op.create_table(
        'login_throttle',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('lockouts', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    with op.batch_alter_table('user') as batch:
        batch.drop_column('failed_logins')
        batch.drop_column('locked_until')


def downgrade():
    with op.batch_alter_table('user') as batch:
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
    op.drop_table('login_throttle')
    op.drop_index(op.f('ix_web_session_user_id'), table_name='web_session')
    op.drop_table('web_session')
