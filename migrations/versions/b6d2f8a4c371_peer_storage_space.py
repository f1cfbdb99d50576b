"""peer storage space on com servers: the last answer, when, and the last error

Revision ID: b6d2f8a4c371
Revises: 9a4c6e8b1d23
Create Date: 2026-12-03 14:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b6d2f8a4c371'
down_revision = '9a4c6e8b1d23'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('com_server') as batch:
        batch.add_column(sa.Column('space_free_bytes', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('space_total_bytes', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('space_checked_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('space_tried_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('space_error', sa.Text(), nullable=False,
                                   server_default=''))


def downgrade():
    with op.batch_alter_table('com_server') as batch:
        batch.drop_column('space_error')
        batch.drop_column('space_tried_at')
        batch.drop_column('space_checked_at')
        batch.drop_column('space_total_bytes')
        batch.drop_column('space_free_bytes')
