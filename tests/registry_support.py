"""Database fixtures shared by the registry tests: a fresh SQLite file or PostgreSQL schema.

PostgreSQL tests read ``$HEATMAPLOSS_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` prints it). Without
it they skip, except under ``CI=true``, where a missing server is a failure: CI must not pass
by skipping the tests it exists to run.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "HEATMAPLOSS_TEST_POSTGRES_URL"


def postgres_base_url() -> str:
    """The test server's URL, or skip/fail the calling test when none is configured."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but ${POSTGRES_ENV} is not set: run eval \"$(.ci/postgres.sh)\" "
                    "before pytest", pytrace=False)
    pytest.skip(f"PostgreSQL tests need ${POSTGRES_ENV} (e.g. eval \"$(.ci/postgres.sh)\")")


def fresh_postgres_url():
    """Yield a URL whose tables live in a new, empty schema; drop the schema afterwards."""
    base = postgres_base_url()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # a configured but unusable server is a failure, never a skip
        admin.dispose()
        pytest.fail(f"cannot use ${POSTGRES_ENV} ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0]})", pytrace=False)
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh registry URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite'}"
    else:
        yield from fresh_postgres_url()
