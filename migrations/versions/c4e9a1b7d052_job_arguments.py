"""job arguments kept on the job row, so a failed delete or rename can be queued again

Revision ID: c4e9a1b7d052
Revises: b6d2f8a4c371
Create Date: 2026-12-03 14:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c4e9a1b7d052'
down_revision = 'b6d2f8a4c371'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job') as batch:
        batch.add_column(sa.Column('arguments', sa.Text(), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('job') as batch:
        batch.drop_column('arguments')
