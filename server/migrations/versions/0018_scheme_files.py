"""Scheme files: a scheme version keeps the files it was loaded from, byte for byte, and the version it was made from.

Revision ID: 0018_scheme_files
Revises: 0017_assessment_drafts
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_scheme_files"
down_revision = "0017_assessment_drafts"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("scheme_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("files_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("based_on_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_scheme_versions_based_on_id_scheme_versions"), "scheme_versions",
                                    ["based_on_id"], ["id"])
        batch_op.drop_constraint("uq_scheme_versions_scheme_key_content_hash", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_scheme_versions_scheme_key_content_hash_files_hash"),
                                          ["scheme_key", "content_hash", "files_hash"])
    op.create_table(
        "scheme_version_files",
        sa.Column("scheme_version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["scheme_version_id"], ["scheme_versions.id"],
                                name=op.f("fk_scheme_version_files_scheme_version_id_scheme_versions")),
        sa.PrimaryKeyConstraint("scheme_version_id", "path", name=op.f("pk_scheme_version_files")),
    )


def downgrade():
    op.drop_table("scheme_version_files")
    with op.batch_alter_table("scheme_versions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_scheme_versions_scheme_key_content_hash_files_hash"), type_="unique")
        batch_op.create_unique_constraint("uq_scheme_versions_scheme_key_content_hash", ["scheme_key", "content_hash"])
        batch_op.drop_constraint(batch_op.f("fk_scheme_versions_based_on_id_scheme_versions"), type_="foreignkey")
        batch_op.drop_column("based_on_id")
        batch_op.drop_column("files_hash")
