"""Open311 to the letter: a reporter's e-mail (sealed) and the address of a photo kept elsewhere (media_url).

Revision ID: 0019_open311_contacts
Revises: 0018_scheme_files
"""
import sqlalchemy as sa
from alembic import op

revision = "0019_open311_contacts"
down_revision = "0018_scheme_files"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("public_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("media_url", sa.String(length=2000), nullable=True))


def downgrade():
    with op.batch_alter_table("public_reports", schema=None) as batch_op:
        batch_op.drop_column("media_url")
        batch_op.drop_column("email_sealed")
