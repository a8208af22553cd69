"""When `fangan tick` next looks at a deadline, so that a tick costs what is new, not every running deadline.

Revision ID: 0015_deadline_check_at
Revises: 0014_people_scores
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_deadline_check_at"
down_revision = "0014_people_scores"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_case_deadlines_check_at"), ["check_at"], unique=False)
    # Every running deadline is looked at once by the next tick, which works out when to look again.
    op.execute("UPDATE case_deadlines SET check_at = started_at WHERE stopped_at IS NULL")


def downgrade():
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_deadlines_check_at"))
        batch_op.drop_column("check_at")
