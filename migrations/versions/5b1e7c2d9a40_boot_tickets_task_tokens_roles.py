"""boot tickets, task tokens, user roles, expiring API tokens

Task tokens move from `task.token_hash` (one per task, replaced on every boot) to their own
table (several per task, stored hashed, dying with the task); the clear `task.boot_token`
goes away: boot scripts now carry one-time tickets. `user.is_admin` becomes `user.role`.

Revision ID: 5b1e7c2d9a40
Revises: 040a0f54fb3b
Create Date: 2026-12-01 23:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '5b1e7c2d9a40'
down_revision = '040a0f54fb3b'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('boot_ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('ticket_hash', sa.String(length=64), nullable=False),
    sa.Column('mac', sa.String(length=17), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_hash')
    )
    with op.batch_alter_table('boot_ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_boot_ticket_task_id'), ['task_id'], unique=False)
    op.create_table('task_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('task_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_token_task_id'), ['task_id'], unique=False)
    # Running clients keep their token: its hash moves to the new table.
    op.execute(
        "INSERT INTO task_token (task_id, token_hash, created_at) "
        "SELECT id, token_hash, created_at FROM task WHERE token_hash <> '' "
        "AND state IN ('created', 'checked_in', 'queued', 'imaging')")
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_token_hash'))
        batch_op.drop_column('token_hash')
        batch_op.drop_column('boot_token')

    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), nullable=False,
                                      server_default='operator'))
    op.execute("UPDATE \"user\" SET role = CASE WHEN is_admin THEN 'admin' ELSE 'operator' END")
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('role', server_default=None)
        batch_op.drop_column('is_admin')


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_admin', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.execute("UPDATE \"user\" SET is_admin = (role = 'admin')")
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('is_admin', server_default=None)
        batch_op.drop_column('role')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('boot_token', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=False,
                                      server_default=''))
        batch_op.create_index(batch_op.f('ix_task_token_hash'), ['token_hash'], unique=False)
    with op.batch_alter_table('task_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_token_task_id'))
    op.drop_table('task_token')
    with op.batch_alter_table('boot_ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_boot_ticket_task_id'))
    op.drop_table('boot_ticket')
