"""Events out: the outbox of case events and notifications, and their deliveries to each receiver.

Revision ID: 0020_outbox
Revises: 0019_open311_contacts
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020_outbox"
down_revision = "0019_open311_contacts"
branch_labels = None
depends_on = None



def upgrade():
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("scheme_key", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_outbox_events_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_events_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_events_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_events_scheme_key"), ["scheme_key"], unique=False)
    op.create_table(
        "outbox_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["outbox_events.id"],
                                name=op.f("fk_outbox_deliveries_event_id_outbox_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_deliveries")),
        sa.UniqueConstraint("event_id", "receiver", name=op.f("uq_outbox_deliveries_event_id_receiver")),
    )
    with op.batch_alter_table("outbox_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_deliveries_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_deliveries_next_at"), ["next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_deliveries_receiver"), ["receiver"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_deliveries_state"), ["state"], unique=False)


def downgrade():
    op.drop_table("outbox_deliveries")
    op.drop_table("outbox_events")
