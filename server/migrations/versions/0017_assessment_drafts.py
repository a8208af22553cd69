"""Assessment drafts: a large period's draft, worked out by a job and kept for its pages, a row per unit.

Revision ID: 0017_assessment_drafts
Revises: 0016_jobs
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017_assessment_drafts"
down_revision = "0016_jobs"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "assessment_drafts",
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("worked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("basis", sa.String(length=200), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["period_id"], ["assessment_periods.id"],
                                name=op.f("fk_assessment_drafts_period_id_assessment_periods")),
        sa.PrimaryKeyConstraint("period_id", name=op.f("pk_assessment_drafts")),
    )
    op.create_table(
        "assessment_draft_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("names", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(["period_id"], ["assessment_periods.id"],
                                name=op.f("fk_assessment_draft_rows_period_id_assessment_periods")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_draft_rows")),
    )
    with op.batch_alter_table("assessment_draft_rows", schema=None) as batch_op:
        batch_op.create_index("ix_assessment_draft_rows_period_position", ["period_id", "position"], unique=False)
        batch_op.create_index(batch_op.f("ix_assessment_draft_rows_unit_id"), ["unit_id"], unique=False)


def downgrade():
    with op.batch_alter_table("assessment_draft_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_draft_rows_unit_id"))
        batch_op.drop_index("ix_assessment_draft_rows_period_position")
    op.drop_table("assessment_draft_rows")
    op.drop_table("assessment_drafts")
