"""Where a case moved: each step records the unit it left and the unit it went to, so that a unit that
escalated a case (上报) keeps the credit after the case moved up (`counts_for: escalator`).

Revision ID: 0010_case_moves
Revises: 0009_trustworthy_results
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_case_moves"
down_revision = "0009_trustworthy_results"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_unit_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("to_unit_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_case_events_from_unit_id"), ["from_unit_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_case_events_from_unit_id_units"), "units", ["from_unit_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_case_events_to_unit_id_units"), "units", ["to_unit_id"], ["id"])


def downgrade():
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_case_events_to_unit_id_units"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_case_events_from_unit_id_units"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_case_events_from_unit_id"))
        batch_op.drop_column("to_unit_id")
        batch_op.drop_column("from_unit_id")
