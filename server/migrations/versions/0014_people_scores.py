"""Published scores of people (sheets that assess the holders of posts of some tiers): a score row has a unit,
or an account, or a post with no account, with the person's name and unit as they were at publication.

Revision ID: 0014_people_scores
Revises: 0013_area_scores
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_people_scores"
down_revision = "0013_area_scores"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("assessment_scores", schema=None) as batch_op:
        batch_op.alter_column("unit_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("post_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("person_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("answers_to_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_assessment_scores_user_id_users"), "users", ["user_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_assessment_scores_post_id_posts"), "posts", ["post_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_assessment_scores_answers_to_id_units"), "units",
                                    ["answers_to_id"], ["id"])
        batch_op.create_unique_constraint(batch_op.f("uq_assessment_scores_revision_id_user_id"),
                                          ["revision_id", "user_id"])
        batch_op.create_unique_constraint(batch_op.f("uq_assessment_scores_revision_id_post_id"),
                                          ["revision_id", "post_id"])


def downgrade():
    # Before this version a score was always a unit's: people's scores cannot be kept.
    op.execute("DELETE FROM assessment_scores WHERE unit_id IS NULL")
    with op.batch_alter_table("assessment_scores", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_assessment_scores_revision_id_post_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_assessment_scores_revision_id_user_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_assessment_scores_answers_to_id_units"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_assessment_scores_post_id_posts"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_assessment_scores_user_id_users"), type_="foreignkey")
        batch_op.drop_column("answers_to_id")
        batch_op.drop_column("person_name")
        batch_op.drop_column("post_id")
        batch_op.drop_column("user_id")
        batch_op.alter_column("unit_id", existing_type=sa.Integer(), nullable=False)
