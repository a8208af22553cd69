"""Where a case came from (staff, patrol or public), for routing conditions and lists.

Revision ID: 0009_case_source
Revises: 0008_api_clients
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_case_source"
down_revision = "0008_api_clients"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="staff"))
    # Cases that already exist: a public report's case came from the public, a record's finding from a patrol.
    op.execute("UPDATE cases SET source = 'public' WHERE id IN (SELECT case_id FROM public_reports)")
    op.execute("UPDATE cases SET source = 'patrol' WHERE submission_id IN "
               "(SELECT id FROM submissions WHERE source_id IS NOT NULL)")


def downgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("source")
