"""Schema version 2: ``models.model_sha256``, the SHA-256 of the saved model file, recorded when
the model is written so that a resumed run can tell a damaged file from a good one.

Revision ID: 0002
Revises: 0001
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_versions = sa.table("schema_version", sa.column("version", sa.Integer),
                     sa.column("applied_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.add_column("models", sa.Column("model_sha256", sa.String(64)))
    op.bulk_insert(_versions, [{"version": 2, "applied_at": datetime.now(timezone.utc)}])


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("model_sha256")
    op.execute(_versions.delete().where(_versions.c.version == 2))
