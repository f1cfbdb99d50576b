"""image sizes and replication byte counts as 64-bit integers (PostgreSQL's integer is 32-bit)

Revision ID: d7f3b2e9a614
Revises: c4e9a1b7d052
Create Date: 2026-12-03 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd7f3b2e9a614'
down_revision = 'c4e9a1b7d052'
branch_labels = None
depends_on = None

COLUMNS = (("image", ("size_on_server_bytes", "size_on_client_bytes")),
           ("replication_status", ("rate_bps", "bytes_sent")))


def _retype(old, new):
    for table, names in COLUMNS:
        with op.batch_alter_table(table) as batch:
            for name in names:
                batch.alter_column(name, existing_type=old(), type_=new(),
                                   existing_nullable=False)


def upgrade():
    _retype(sa.Integer, sa.BigInteger)


def downgrade():
    _retype(sa.BigInteger, sa.Integer)
