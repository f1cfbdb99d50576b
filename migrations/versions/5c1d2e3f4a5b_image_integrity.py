"""image integrity: damaged flag and last verification time

Revision ID: 5c1d2e3f4a5b
Revises: 5b1e7c2d9a40
Create Date: 2026-12-01 23:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '5c1d2e3f4a5b'
down_revision = '5b1e7c2d9a40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('image') as batch:
        batch.add_column(sa.Column('damaged', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('verified_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('image') as batch:
        batch.drop_column('verified_at')
        batch.drop_column('damaged')
