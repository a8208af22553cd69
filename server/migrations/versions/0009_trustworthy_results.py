"""Results a district can publish: where a case came from (staff, patrol or public), for routing conditions
and lists; provisional publications of an assessment; calendar years marked complete.

Revision ID: 0009_trustworthy_results
Revises: 0008_api_clients
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_trustworthy_results"
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
    with op.batch_alter_table("assessment_revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )


def downgrade():
    op.drop_table("calendar_years")
    with op.batch_alter_table("assessment_revisions", schema=None) as batch_op:
        batch_op.drop_column("provisional")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("source")
