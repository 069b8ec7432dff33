"""Schema of the results registry: tables, schema version, and validation of written values.

The tables here are the newest schema; :mod:`heatmaploss.registry.schema` migrates older
databases to it (Alembic, ``registry/migrations``), and a test checks that the migrated schema
equals these definitions.

:mod:`heatmaploss.registry.store` reads and writes these tables; this module only defines them. Rules
that keep concurrent writers correct live in the table definitions: every natural key is a
unique constraint, and no key column is nullable (two NULLs never collide in a unique
constraint, so a NULL key part would let duplicates in).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sqlalchemy import (JSON, Column, DateTime, Float, ForeignKey, Integer, MetaData, String,
                        Table, Text, UniqueConstraint)
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    import pandas as pd

#: Version of the schema defined here (the migration ``registry/migrations/versions/000N``).
SCHEMA_VERSION = 2
MODEL_STATUSES = ("running", "completed", "failed", "discarded")
#: ``class_name`` of a metric computed over all classes.
ALL_CLASSES = "all"
NAME_LENGTH = 200

metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

searches = Table(
    "searches", metadata,
    Column("id", Integer, primary_key=True),
    Column("profile", String(64), nullable=False),
    Column("experiment", String(NAME_LENGTH), nullable=False),
    Column("protocol", String(NAME_LENGTH), nullable=False),
    Column("group_name", String(NAME_LENGTH), nullable=False),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("seed", Integer),
    Column("loss_config", JSON, nullable=False),
    Column("hyperparameter_space", JSON, nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("git_commit", String(64)),
    Column("versions", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("profile", "experiment", "protocol", "group_name", "name",
                     name="uq_searches_key"),
)

models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True),
    Column("search_id", Integer, ForeignKey("searches.id"), nullable=False),
    Column("trial", String(NAME_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("seed", Integer),
    Column("hyperparameters", JSON),
    Column("epochs", Integer),
    Column("best_epoch", Integer),
    Column("wall_time_s", Float),
    Column("val_accuracy", Float),
    Column("val_loss", Float),
    Column("test_accuracy", Float),
    Column("scores", JSON),
    Column("model_path", Text),
    # SHA-256 of the saved model file, recorded when it is written (schema version 2).
    Column("model_sha256", String(64)),
    Column("git_commit", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("search_id", "trial", name="uq_models_key"),
)

metrics = Table(
    "metrics", metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("dataset", String(NAME_LENGTH), nullable=False),
    Column("metric", String(NAME_LENGTH), nullable=False),
    # "" rather than NULL where not applicable: NULLs never collide in a unique constraint.
    Column("explainer", String(NAME_LENGTH), nullable=False),
    Column("region", String(NAME_LENGTH), nullable=False),
    Column("class_name", String(NAME_LENGTH), nullable=False),
    Column("value", Float),
    Column("n", Integer),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_id", "dataset", "metric", "explainer", "region", "class_name",
                     name="uq_metrics_key"),
)

METRIC_KEY = ("dataset", "metric", "explainer", "region", "class_name")
METRIC_DEFAULTS = {"dataset": "test", "explainer": "", "region": "", "class_name": ALL_CLASSES}
MODEL_COLUMNS = ("id", "search_id", "trial", "status", "seed", "hyperparameters", "epochs",
                 "best_epoch", "wall_time_s", "val_accuracy", "val_loss", "test_accuracy",
                 "scores", "model_path", "model_sha256", "git_commit", "created_at",
                 "updated_at")


def now() -> datetime:
    """The current UTC time (every timestamp in the registry is UTC)."""
    return datetime.now(timezone.utc)


def check_name(label: str, value: Any) -> str:
    """Return ``value`` if it is a usable name (key column), else raise ValueError naming it."""
    if not isinstance(value, str) or not value or len(value) > NAME_LENGTH:
        raise ValueError(f"{label}={value!r}: must be a non-empty string of at most {NAME_LENGTH} "
                         "characters")
    return value


def check_number(label: str, value: Any) -> float | None:
    """Return ``value`` as a float (NaN or inf → None: stored as NULL), else raise ValueError."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label}={value!r}: must be a number") from None
    return number if math.isfinite(number) else None


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of a JSON-ready configuration, independent of key order."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def search_filters(experiment=None, protocol=None, group=None, profile=None) -> list:
    """WHERE clauses on ``searches`` for each filter given (a value, or a list of values)."""
    clauses = []
    for column, value in ((searches.c.experiment, experiment), (searches.c.protocol, protocol),
                          (searches.c.group_name, group), (searches.c.profile, profile)):
        if value is None:
            continue
        clauses.append(column == value if isinstance(value, str)
                       else column.in_(list(value)))
    return clauses


def metric_rows(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[dict]:
    """Validate metric rows and fill defaults (see ``Registry.record_metrics``).

    Args:
        rows: mappings or a DataFrame with ``metric``, ``value`` and optional key columns.

    Returns:
        One dict per distinct key (the last row wins), sorted by key.

    Raises:
        ValueError: a row lacks ``metric``/``value``, has unknown keys or a non-numeric value.
    """
    if hasattr(rows, "to_dict"):  # a DataFrame
        rows = rows.to_dict("records")
    allowed = {*METRIC_KEY, "value", "n"}
    by_key: dict[tuple, dict] = {}
    for row in rows:
        unknown = set(row) - allowed
        if unknown or "metric" not in row or "value" not in row:
            raise ValueError(
                f"metric row {dict(row)!r}: needs 'metric' and 'value'; allowed keys are "
                f"{', '.join(sorted(allowed))}")
        record = dict(METRIC_DEFAULTS)
        for key in METRIC_KEY:
            value = row.get(key)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                record[key] = str(value)
        check_name("metric", record["metric"])
        record["value"] = check_number("value", row["value"])
        n = row.get("n")
        record["n"] = None if n is None or (isinstance(n, float) and math.isnan(n)) else int(n)
        # Within one statement PostgreSQL refuses to upsert the same row twice: keep the last.
        by_key[tuple(record[k] for k in METRIC_KEY)] = record
    # Sorted keys give every writer the same lock order (no deadlocks between processes).
    return [by_key[k] for k in sorted(by_key)]


def insert(dialect: str, table: Table):
    """An INSERT for ``dialect`` that supports ``on_conflict_do_update/nothing`` (upserts)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@functools.lru_cache(maxsize=256)
def upsert(dialect: str, table: str, key: tuple[str, ...], update: tuple[str, ...],
           returning: str | None = None):
    """``INSERT ... ON CONFLICT (key) DO UPDATE SET col = excluded.col`` for ``update`` columns.

    Values are passed when executing. Cached: building ``excluded`` column proxies costs more
    than the database round trip.

    Args:
        dialect: ``sqlite`` or ``postgresql``.
        table: table name.
        key: columns of the unique constraint that identifies a row.
        update: columns overwritten when the row exists (empty: DO NOTHING).
        returning: a column to return (e.g. ``id``), or None.

    Returns:
        The statement.
    """
    target = metadata.tables[table]
    stmt = insert(dialect, target)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=list(key),
                                          set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    return stmt.returning(target.c[returning]) if returning else stmt
