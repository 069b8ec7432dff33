"""Schema versions of the registry: Alembic migrations, run when a registry is opened.

:class:`~heatmaploss.registry.Registry` calls :func:`revision` on every open and, when the
database is behind, :func:`upgrade` inside one write transaction — there is no separate
command. A database written before the migrations existed (schema version 1, no
``alembic_version`` table) is stamped with revision ``0001`` and upgraded in place; every row is
kept. A database whose revision this heatmaploss does not know was written by a newer version
and is refused (:class:`SchemaTooNewError`). The migrations live in ``registry/migrations``.
No TensorFlow import.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from sqlalchemy import func, inspect, select, text

from .engine import RegistryError
from .tables import SCHEMA_VERSION, schema_version

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The revision of the schema heatmaploss created before it had migrations (version 1).
BASELINE = "0001"
PG_SCHEMA_LOCK = 73_102_022  # advisory-lock id that serialises schema changes on PostgreSQL


class SchemaTooNewError(RegistryError):
    """The database was written by a newer heatmaploss (its schema revision is unknown here)."""


def _config(connection=None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=1)
def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this heatmaploss knows (the schema :mod:`.tables` defines)."""
    return _scripts().get_current_head()


def known(revision_id: str) -> bool:
    """Whether this heatmaploss has a migration with this revision id."""
    return any(script.revision == revision_id for script in _scripts().walk_revisions())


def revision(conn) -> str | None:
    """The database's Alembic revision; None for a new database or one written before the
    migrations (see :func:`legacy_version`)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def legacy_version(conn) -> int | None:
    """The newest version in ``schema_version`` of a database without an Alembic revision
    (None when there are no tables: a new database)."""
    if "searches" not in inspect(conn).get_table_names():
        return None
    if "schema_version" not in inspect(conn).get_table_names():
        return 1
    return conn.execute(select(func.max(schema_version.c.version))).scalar() or 1


def too_new(url: str, found: str | int) -> SchemaTooNewError:
    """The one-line error for a database written by a newer heatmaploss."""
    return SchemaTooNewError(
        f"results database {url!r} has schema {found}, newer than this heatmaploss knows "
        f"(up to {head()}, version {SCHEMA_VERSION}): upgrade heatmaploss "
        "(pip install -U -e .) before using it")


def upgrade(conn, url: str) -> str | None:
    """Bring the database to :func:`head`, inside the caller's write transaction.

    Concurrent callers are serialised (SQLite: the caller's ``BEGIN IMMEDIATE``; PostgreSQL:
    an advisory lock), so two processes opening an old database never migrate it twice.

    Args:
        conn: a connection inside a write transaction.
        url: the database URL with its password masked (for messages).

    Returns:
        The revision the database had before (None: it was new, or written before migrations).

    Raises:
        SchemaTooNewError: a newer heatmaploss wrote the database.
    """
    from alembic import command

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_SCHEMA_LOCK})
    before = revision(conn)
    config = _config(conn)
    start = before or "an empty database"
    if before is None:
        legacy = legacy_version(conn)
        if legacy is not None:
            if legacy > 1:
                raise too_new(url, f"version {legacy}")
            command.stamp(config, BASELINE)  # what it holds is revision 0001's schema
            start = f"{BASELINE} (written before migrations)"
    elif not known(before):
        raise too_new(url, f"revision {before}")
    if revision(conn) != head():
        command.upgrade(config, "head")
        log.info("results database %s: schema upgraded from %s to %s", url, start, head())
    return before


__all__ = ["BASELINE", "MIGRATIONS_DIR", "SchemaTooNewError", "head", "known", "legacy_version",
           "revision", "too_new", "upgrade"]
