"""The money ledger of a published score: funding, rewards and fines by flag, charges (有偿整改), line by line.

Revision ID: 0011_money_ledger
Revises: 0010_case_moves
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_money_ledger"
down_revision = "0010_case_moves"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("assessment_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "money", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True))
    # Scores published before have no lines: their funding alone is their ledger (AssessmentScore.ledger).
    op.execute("UPDATE assessment_scores SET money = '[]'")


def downgrade():
    with op.batch_alter_table("assessment_scores", schema=None) as batch_op:
        batch_op.drop_column("money")
