"""encrypt com servers' shared secrets with the vault key kept outside the database

SQLite keeps deleted row content in free pages: secure_delete overwrites what the
rewrite leaves behind, so the database file holds no clear secret afterwards.

Revision ID: 9a4c6e8b1d23
Revises: 8e3b5f7a2c19
Create Date: 2026-12-03 11:00:00

"""
from alembic import op
import sqlalchemy as sa

from app import vault


revision = '9a4c6e8b1d23'
down_revision = '8e3b5f7a2c19'
branch_labels = None
depends_on = None


def _secure_delete():
    conn = op.get_bind()
    if conn.dialect.name == 'sqlite':
        conn.exec_driver_sql('PRAGMA secure_delete = ON')


def _rewrite(change):
    conn = op.get_bind()
    key = vault.app_key()
    table = sa.table('com_server', sa.column('id', sa.Integer),
                     sa.column('shared_secret', sa.String))
    for row in conn.execute(sa.select(table.c.id, table.c.shared_secret)).all():
        new = change(row.shared_secret or '', key)
        if new != (row.shared_secret or ''):
            conn.execute(table.update().where(table.c.id == row.id).values(shared_secret=new))


def upgrade():
    _secure_delete()
    with op.batch_alter_table('com_server') as batch:
        batch.alter_column('shared_secret', existing_type=sa.String(length=128),
                           type_=sa.String(length=1024), existing_nullable=False)
    _rewrite(lambda value, key: value if not value or vault.is_sealed(value)
             else vault.encrypt(value, key))


def downgrade():
    _secure_delete()
    _rewrite(lambda value, key: vault.decrypt(value, key) if vault.is_sealed(value) else value)
    with op.batch_alter_table('com_server') as batch:
        batch.alter_column('shared_secret', existing_type=sa.String(length=1024),
                           type_=sa.String(length=128), existing_nullable=False)
