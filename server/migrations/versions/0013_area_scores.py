"""The areas behind a published score, for sheets scored per area (segments rolled up into roads and units).

Revision ID: 0013_area_scores
Revises: 0012_reporter_unit
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013_area_scores"
down_revision = "0012_reporter_unit"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("assessment_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "areas", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True))


def downgrade():
    with op.batch_alter_table("assessment_scores", schema=None) as batch_op:
        batch_op.drop_column("areas")
