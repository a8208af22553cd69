"""A case records the reporter's own unit (`counts_for: reporter`), not the unit of the report's place.

Revision ID: 0012_reporter_unit
Revises: 0011_money_ledger
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_reporter_unit"
down_revision = "0011_money_ledger"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reporter_unit_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_reporter_unit_id"), ["reporter_unit_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_cases_reporter_unit_id_units"), "units", ["reporter_unit_id"],
                                    ["id"])
    # Cases reported before: the unit of the post the report was filed under, where there was one.
    op.execute("UPDATE cases SET reporter_unit_id = (SELECT COALESCE(posts.unit_id, areas.unit_id) FROM submissions "
               "JOIN posts ON posts.id = submissions.post_id LEFT JOIN areas ON areas.id = posts.area_id "
               "WHERE submissions.id = cases.submission_id)")


def downgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cases_reporter_unit_id_units"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_cases_reporter_unit_id"))
        batch_op.drop_column("reporter_unit_id")
