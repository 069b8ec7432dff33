"""Alembic migrations of the registry's schema, run by :func:`heatmaploss.registry.schema.upgrade`.

Each file in ``versions/`` moves the schema one version on; its ``revision`` is the schema
version as four digits and it records that version in the ``schema_version`` table, so that
heatmaploss versions from before the migrations refuse a newer database. Revision ``0001`` is
the schema those versions created themselves; databases they wrote are stamped with it when
first opened, then upgraded.

To change the schema: change :mod:`heatmaploss.registry.tables`, add the next
``versions/NNNN_<what>.py`` (``revision = "NNNN"``, ``down_revision`` the previous one, an
``upgrade()`` that alters the tables and inserts version NNNN into ``schema_version``, a
``downgrade()``), and raise ``tables.SCHEMA_VERSION``. ``tests/test_migrations.py`` checks that
the migrated schema equals the tables' definition on SQLite and PostgreSQL and that every row
of an older database survives.
"""
