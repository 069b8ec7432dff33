"""The results registry: every search, trained model and per-model metric in one database.

    from heatmaploss.registry import Registry
    with Registry(results_dir="results/quick") as registry:
        registry.metrics_wide(experiment="exp1")

* :mod:`.store` — :class:`Registry`, idempotent upserts and the query helpers;
* :mod:`.tables` — the tables (``searches``, ``models``, ``metrics``, ``schema_version``);
* :mod:`.schema` — schema versions: Alembic migrations (``migrations/``), run when a registry
  opens;
* :mod:`.engine` — URLs, SQLite settings and retries of transient errors (a PostgreSQL server
  that restarts is waited for).

SQLite in the results folder by default, PostgreSQL by URL (``$HEATMAPLOSS_DATABASE_URL``).
No TensorFlow.
"""

from .engine import RegistryError
from .store import ALL_CLASSES, MODEL_STATUSES, SCHEMA_VERSION, Registry, RegistryConflictError, metadata

__all__ = ["ALL_CLASSES", "MODEL_STATUSES", "SCHEMA_VERSION", "Registry", "RegistryConflictError",
           "RegistryError", "metadata"]
