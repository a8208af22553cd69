"""Reports from the public: tracking codes, sealed contacts, moderation and the follow-up.

Revision ID: 0007_public
Revises: 0006_live_entry
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_public'
down_revision = '0006_live_entry'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('public_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scheme_key', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.Column('address_hash', sa.String(length=32), nullable=True),
    sa.Column('device_hash', sa.String(length=32), nullable=True),
    sa.Column('name_sealed', sa.Text(), nullable=True),
    sa.Column('phone_sealed', sa.Text(), nullable=True),
    sa.Column('phone_masked', sa.String(length=24), nullable=True),
    sa.Column('moderation', sa.String(length=16), nullable=False),
    sa.Column('moderated_by_id', sa.Integer(), nullable=True),
    sa.Column('moderated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('moderation_note', sa.Text(), nullable=True),
    sa.Column('exposed', sa.Boolean(), nullable=False),
    sa.Column('confirmed', sa.String(length=16), nullable=True),
    sa.Column('satisfaction', sa.String(length=32), nullable=True),
    sa.Column('followup_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('followup_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_public_reports_case_id_cases')),
    sa.ForeignKeyConstraint(['moderated_by_id'], ['users.id'], name=op.f('fk_public_reports_moderated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_public_reports')),
    sa.UniqueConstraint('case_id', name=op.f('uq_public_reports_case_id')),
    sa.UniqueConstraint('code', name=op.f('uq_public_reports_code'))
    )
    with op.batch_alter_table('public_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_public_reports_address_hash'), ['address_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_public_reports_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_public_reports_device_hash'), ['device_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_public_reports_exposed'), ['exposed'], unique=False)
        batch_op.create_index(batch_op.f('ix_public_reports_followup_at'), ['followup_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_public_reports_moderation'), ['moderation'], unique=False)
        batch_op.create_index(batch_op.f('ix_public_reports_scheme_key'), ['scheme_key'], unique=False)



def downgrade():
    with op.batch_alter_table('public_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_public_reports_scheme_key'))
        batch_op.drop_index(batch_op.f('ix_public_reports_moderation'))
        batch_op.drop_index(batch_op.f('ix_public_reports_followup_at'))
        batch_op.drop_index(batch_op.f('ix_public_reports_exposed'))
        batch_op.drop_index(batch_op.f('ix_public_reports_device_hash'))
        batch_op.drop_index(batch_op.f('ix_public_reports_created_at'))
        batch_op.drop_index(batch_op.f('ix_public_reports_address_hash'))

    op.drop_table('public_reports')
