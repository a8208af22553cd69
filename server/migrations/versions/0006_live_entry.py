"""One live assessment entry per assessor, unit and item: a partial unique index (NULLs are distinct in the
plain unique key, so it never stopped two live entries).

Revision ID: 0006_live_entry
Revises: 0005_assessment
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_live_entry"
down_revision = "0005_assessment"
branch_labels = None
depends_on = None

LIVE = sa.text("superseded_in IS NULL")


def upgrade():
    with op.batch_alter_table("assessment_entries", schema=None) as batch_op:
        batch_op.create_index("uq_assessment_entries_live", ["period_id", "unit_id", "item_key", "assessor_id"],
                              unique=True, postgresql_where=LIVE, sqlite_where=LIVE)


def downgrade():
    with op.batch_alter_table("assessment_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_assessment_entries_live", postgresql_where=LIVE, sqlite_where=LIVE)
