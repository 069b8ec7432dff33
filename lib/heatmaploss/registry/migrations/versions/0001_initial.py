"""Schema version 1: searches, models, metrics and schema_version (the schema heatmaploss created
before it had migrations; databases it wrote are stamped with this revision).

Revision ID: 0001
Revises: none
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    versions = op.create_table(
        "schema_version",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("protocol", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("seed", sa.Integer),
        sa.Column("loss_config", sa.JSON, nullable=False),
        sa.Column("hyperparameter_space", sa.JSON, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("versions", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("profile", "experiment", "protocol", "group_name", "name",
                            name="uq_searches_key"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("search_id", sa.Integer, sa.ForeignKey("searches.id"), nullable=False),
        sa.Column("trial", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seed", sa.Integer),
        sa.Column("hyperparameters", sa.JSON),
        sa.Column("epochs", sa.Integer),
        sa.Column("best_epoch", sa.Integer),
        sa.Column("wall_time_s", sa.Float),
        sa.Column("val_accuracy", sa.Float),
        sa.Column("val_loss", sa.Float),
        sa.Column("test_accuracy", sa.Float),
        sa.Column("scores", sa.JSON),
        sa.Column("model_path", sa.Text),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("search_id", "trial", name="uq_models_key"),
    )
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("explainer", sa.String(200), nullable=False),
        sa.Column("region", sa.String(200), nullable=False),
        sa.Column("class_name", sa.String(200), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("n", sa.Integer),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model_id", "dataset", "metric", "explainer", "region", "class_name",
                            name="uq_metrics_key"),
    )
    op.bulk_insert(versions, [{"version": 1, "applied_at": datetime.now(timezone.utc)}])


def downgrade() -> None:
    for table in ("metrics", "models", "searches", "schema_version"):
        op.drop_table(table)
