"""peer rights and durable replay protection: image origin, replication nonces

Revision ID: 7d2a9c4e1f06
Revises: 5c1d2e3f4a5b
Create Date: 2026-12-02 00:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = '7d2a9c4e1f06'
down_revision = '5c1d2e3f4a5b'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('image') as batch:
        batch.add_column(sa.Column('origin', sa.String(length=64), nullable=False,
                                   server_default=''))
    op.create_table(
        'replication_nonce',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sender', sa.String(length=64), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sender', 'nonce'),
    )
    op.create_index(op.f('ix_replication_nonce_expires_at'), 'replication_nonce',
                    ['expires_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_replication_nonce_expires_at'), table_name='replication_nonce')
    op.drop_table('replication_nonce')
    with op.batch_alter_table('image') as batch:
        batch.drop_column('origin')
