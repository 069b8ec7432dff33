"""Schema migrations (Alembic): a registry written before them is upgraded in place and keeps
every row, the migrated schema is the tables' definition, a newer database is refused."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from heatmaploss.registry import SCHEMA_VERSION, Registry, RegistryError, schema
from heatmaploss.registry.tables import metadata
from registry_support import database_url  # noqa: F401  (fixture)
from sqlalchemy import MetaData, create_engine, select, text

#: A registry written by heatmaploss before the migrations (schema version 1), as SQL.
SCHEMA1_DUMP = Path(__file__).resolve().parent / "data" / "registry_schema1.sql"
TABLES = ("searches", "models", "metrics", "schema_version")


def _schema1_database(url: str) -> None:
    """Write the schema-1 registry of ``SCHEMA1_DUMP`` at ``url`` (an empty database)."""
    dump = SCHEMA1_DUMP.read_text()
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript(dump)
        return
    # PostgreSQL: the same schema as heatmaploss created it (revision 0001, without Alembic's
    # bookkeeping table), then the dump's rows in an order the foreign keys accept.
    engine = create_engine(url)
    with engine.begin() as conn:
        from alembic import command

        command.upgrade(schema._config(conn), schema.BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DELETE FROM schema_version"))
        inserts = re.findall(r'^INSERT INTO "(\w+)" VALUES\((.*)\);$', dump, re.M)
        for table in TABLES:
            for name, values in inserts:
                if name == table:
                    conn.execute(text(f"INSERT INTO {name} VALUES ({values})"))
            if table != "schema_version":
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT MAX(id) FROM {table}))"))
    engine.dispose()


def _rows(url: str) -> dict[str, list[dict]]:
    engine = create_engine(url)
    reflected = MetaData()
    reflected.reflect(engine, only=TABLES)
    with engine.connect() as conn:
        found = {name: [dict(r) for r in conn.execute(
            select(reflected.tables[name]).order_by(*reflected.tables[name].primary_key)
        ).mappings()] for name in TABLES}
    engine.dispose()
    return found


def _schema_differences(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        revision = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    assert revision == schema.head()
    return differences


def test_migrations_build_exactly_the_tables_and_record_every_version(database_url):
    Registry(url=database_url).close()
    assert _schema_differences(database_url) == []
    assert [r["version"] for r in _rows(database_url)["schema_version"]] == \
        list(range(1, SCHEMA_VERSION + 1))
    assert schema.head() == f"{SCHEMA_VERSION:04d}"
    Registry(url=database_url).close()  # opening again changes nothing
    assert len(_rows(database_url)["schema_version"]) == SCHEMA_VERSION


def test_a_registry_written_before_migrations_is_upgraded_in_place_and_keeps_every_row(
        database_url):
    _schema1_database(database_url)
    before = _rows(database_url)
    assert len(before["models"]) == 7 and len(before["metrics"]) == 12

    registry = Registry(url=database_url)
    after = _rows(database_url)
    for table in ("searches", "models", "metrics"):
        assert len(after[table]) == len(before[table])
        for old, new in zip(before[table], after[table]):
            assert {k: new[k] for k in old} == old, table  # every value of every row kept
    assert all(row["model_sha256"] is None for row in after["models"])
    assert [r["version"] for r in after["schema_version"]] == list(range(1, SCHEMA_VERSION + 1))
    assert _schema_differences(database_url) == []

    # The upgraded registry reads as before and takes new rows.
    wide = registry.metrics_wide(experiment="exp1", protocol="controlled")
    assert wide["hirescam_heart"].tolist()[:2] == [0.5, 0.6] and len(wide) == 6
    search_id = int(wide["search_id"].iloc[0])
    registry.record_model(search_id, "3", val_accuracy=0.5, model_sha256="ab" * 32)
    assert registry.models(search_id=search_id)["model_sha256"].iloc[-1] == "ab" * 32
    models = registry.models(search_id=search_id)
    discarded = int(models.loc[models["trial"] == "0", "model_id"].iloc[0])
    registry.discard_model(search_id, "0")
    assert "0" not in set(registry.models(search_id=search_id)["trial"])
    assert discarded not in set(registry.metrics(experiment="exp1")["model_id"])
    registry.close()


def test_processes_opening_an_old_registry_together_migrate_it_once(database_url):
    _schema1_database(database_url)
    errors = []

    def open_it() -> None:
        try:
            Registry(url=database_url).close()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [r["version"] for r in _rows(database_url)["schema_version"]] == \
        list(range(1, SCHEMA_VERSION + 1))


def test_a_database_from_a_newer_heatmaploss_is_refused_in_one_line(database_url):
    Registry(url=database_url).close()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(RegistryError) as info:
        Registry(url=database_url)
    message = str(info.value)
    assert "\n" not in message and "revision 0099, newer than this heatmaploss" in message
    assert "upgrade heatmaploss" in message
    # Written before Alembic bookkeeping existed, but by a newer schema: refused as well.
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO schema_version VALUES (7, '2030-01-01')"))
    with pytest.raises(RegistryError, match="has schema version 7, newer than this heatmaploss"):
        Registry(url=database_url)
    engine.dispose()
    assert len(_rows(database_url)["searches"]) == 0  # nothing written
