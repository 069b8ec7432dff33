"""The results registry: every search, trained model and per-model metric in one database.

An SQLite file in the results folder by default; a PostgreSQL server when
``$HEATMAPLOSS_DATABASE_URL`` or an explicit URL names one, so that workers on several machines
can share one registry. Writes are idempotent upserts keyed by unique constraints: re-running a
notebook or a crashed search updates rows instead of duplicating them, and any number of
processes may write at once. Nothing here drops or recreates a table: opening a registry
migrates an older schema in place (:mod:`heatmaploss.registry.schema`, Alembic) and refuses
one written by a newer heatmaploss. No TensorFlow import.

Tables (defined in :mod:`heatmaploss.registry.tables`):

* ``searches`` — one per hyperparameter search (a group of models trained the same way). Natural
  key: ``(profile, experiment, protocol, group_name, name)``; ``experiment`` is also the
  chapter (``exp1``, ``exp2``, ``acdc_classifier`` ...).
* ``models`` — one per trained model (a Keras Tuner trial, a seed, ...); key ``(search_id,
  trial)``.
* ``metrics`` — one value per ``(model_id, dataset, metric, explainer, region, class_name)``;
  ``explainer``/``region`` are ``""`` where they do not apply, ``class_name`` is ``"all"`` for
  the whole set.
* ``schema_version`` — versions of this schema that have been applied to the database
  (``alembic_version`` holds the migration revision).

Example::

    registry = Registry(results_dir=results_dir)
    search_id = registry.get_or_create_search(experiment="exp1", protocol="controlled",
        group="heatmap", name="exp1_heatmap", profile="quick", seed=0)
    registry.record_model(search_id, "trial_03", wall_time_s=41.0, val_accuracy=0.99,
        metrics=[{"metric": "overlap", "explainer": "hirescam", "region": "heart",
                  "class_name": "NOR", "value": 0.81, "n": 500}])
    registry.metrics_wide(experiment="exp1", class_name="NOR")  # one row per model
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..project import paths, provenance
from ..project.files import to_jsonable
from . import schema
from .engine import (WRITE_OPTION, RegistryError, check_sqlite_file, first_line, make_engine,
                     mask_url, not_a_database, parse_url, retry_transient, sqlite_path)
from .tables import (ALL_CLASSES, METRIC_KEY, MODEL_COLUMNS, MODEL_STATUSES, SCHEMA_VERSION,
                     check_name, check_number, config_hash, insert, metadata, metric_rows,
                     metrics, models, now, search_filters, searches, upsert)

__all__ = ["Registry", "RegistryError", "RegistryConflictError", "ALL_CLASSES",
           "MODEL_STATUSES", "SCHEMA_VERSION", "metadata"]

if TYPE_CHECKING:  # pandas is imported only by the query helpers: writers start faster
    import pandas as pd

T = TypeVar("T")


class RegistryConflictError(RegistryError, ValueError):
    """A search name is already recorded with a different configuration."""


class Registry:
    """Read and write the results database.

    Args:
        url: database URL (``sqlite:///file`` or ``postgresql+psycopg2://user:pw@host/db``);
            defaults to ``$HEATMAPLOSS_DATABASE_URL``, then ``<results_dir>/registry.sqlite``.
        results_dir: a profile's results folder (holds the default SQLite file).

    Raises:
        ValueError: neither a URL nor a results folder is given.
        RegistryError: the database cannot be used (one-line message with the fix).
    """

    def __init__(self, url: str | None = None, results_dir: str | os.PathLike | None = None):
        env = os.environ.get(paths.DATABASE_URL_ENV)
        if not url and not env and results_dir is None:
            raise ValueError("Registry needs results_dir (for the default SQLite file) or a "
                             f"database url (argument or ${paths.DATABASE_URL_ENV})")
        self.source = ("url argument" if url else f"${paths.DATABASE_URL_ENV}" if env
                       else "results dir")
        self.url = parse_url(paths.database_url(results_dir or ".", url))
        self.dialect = self.url.get_backend_name()
        path = sqlite_path(self.url)
        if path is not None:
            check_sqlite_file(path)
        self._engine = make_engine(self.url)
        self._pid = os.getpid()
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"Registry({mask_url(self.url)!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._engine.dispose()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------
    def _engine_now(self):
        if os.getpid() != self._pid:  # forked child: never reuse the parent's connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine

    def _transaction(self, run: Callable[[Any], T], write: bool, opening: bool = False) -> T:
        def attempt() -> T:
            with self._engine_now().connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    return run(conn)
        # Once open, a registry rides through a server restart; while opening, an unreachable
        # server is reported at once (most often a wrong URL).
        return retry_transient(attempt, self.url, wait_for_server=not opening)

    def _rows(self, stmt) -> list[dict]:
        return self._transaction(lambda conn: [dict(r) for r in conn.execute(stmt).mappings()],
                                 write=False)

    def _open_error(self, exc: DBAPIError) -> RegistryError:
        reason = first_line(exc)
        if self.dialect == "sqlite":
            if "not a database" in reason:
                return not_a_database(self.url.database, reason)
            fix = "check that the file is readable and its folder writable"
        else:
            fix = ("check that the server is running and that host, port, user, password and "
                   f"database are right, or unset ${paths.DATABASE_URL_ENV} to use the SQLite "
                   "file in the results folder")
        return RegistryError(f"cannot open the results database {mask_url(self.url)!r} (from "
                             f"{self.source}): {reason}: {fix}")

    def _ensure_schema(self) -> None:
        masked = mask_url(self.url)
        try:
            found = self._transaction(schema.revision, write=False, opening=True)
            if found != schema.head():
                if found is not None and not schema.known(found):
                    raise schema.too_new(masked, f"revision {found}")
                self._transaction(lambda conn: schema.upgrade(conn, masked), write=True,
                                  opening=True)
        except DBAPIError as exc:
            raise self._open_error(exc) from None

    # -- writing --------------------------------------------------------------------------
    def get_or_create_search(self, *, experiment: str, protocol: str, group: str, name: str,
                             profile: str, seed: int | None = None,
                             loss_config: Mapping[str, Any] | None = None,
                             hyperparameter_space: Mapping[str, Any] | None = None) -> int:
        """Return the id of a search, recording it first if it is new (safe to call anywhere).

        Args:
            experiment: chapter/experiment, e.g. ``exp1``, ``exp2``, ``acdc_classifier``.
            protocol: training protocol, e.g. ``thesis`` or ``controlled``.
            group: compared group, e.g. ``cce`` or ``heatmap``.
            name: the search's name (e.g. its Keras Tuner project name).
            profile: run profile (``smoke``, ``quick``, ``thesis``).
            seed: the search's seed.
            loss_config: loss settings (JSON-able).
            hyperparameter_space: searched ranges, e.g. ``{"learning_rate": [5e-6, 1e-3, "log"]}``.

        Returns:
            The search id; the same id for every call with the same key.

        Raises:
            RegistryConflictError: the key exists with a different seed, loss configuration or
                hyperparameter space (a resumed search must not silently change).
        """
        key = {"profile": check_name("profile", profile),
               "experiment": check_name("experiment", experiment),
               "protocol": check_name("protocol", protocol),
               "group_name": check_name("group", group), "name": check_name("name", name)}
        config = to_jsonable({"seed": seed, "loss_config": dict(loss_config or {}),
                              "hyperparameter_space": dict(hyperparameter_space or {})})
        digest = config_hash(config)
        prov = provenance.collect()

        def run(conn) -> int:
            conn.execute(insert(self.dialect, searches)
                         .values(**key, **config, config_hash=digest, git_commit=prov["git_commit"],
                                 versions=prov["versions"], created_at=now())
                         .on_conflict_do_nothing(index_elements=list(key)))
            row = conn.execute(select(searches).filter_by(**key)).mappings().one()
            if row["config_hash"] != digest:
                changed = [field for field in config if to_jsonable(row[field]) != config[field]]
                raise RegistryConflictError(
                    f"search {experiment}/{protocol}/{group}/{name} (profile {profile}) is "
                    f"already recorded with a different {' and '.join(changed) or 'configuration'}"
                    ": give this search another name, or rerun it with the recorded settings")
            return row["id"]

        return self._transaction(run, write=True)

    def record_model(self, search_id: int, trial: str, *, status: str = "completed",
                     seed: int | None = None, hyperparameters: Mapping[str, Any] | None = None,
                     epochs: int | None = None, best_epoch: int | None = None,
                     wall_time_s: float | None = None, val_accuracy: float | None = None,
                     val_loss: float | None = None, test_accuracy: float | None = None,
                     scores: Mapping[str, Any] | None = None, model_path: str | None = None,
                     model_sha256: str | None = None,
                     metrics: Iterable[Mapping[str, Any]] | pd.DataFrame | None = None) -> int:
        """Insert or update one model (upsert on ``(search_id, trial)``); never duplicates.

        Arguments left as None keep the recorded value, so a trial can be recorded as
        ``running`` when it starts and completed later. ``scores`` (other scalar results, e.g.
        ``{"val_mse": 0.01}``) replaces the recorded dict when given.

        Args:
            search_id: from :meth:`get_or_create_search`.
            trial: trial id or name, unique within the search.
            status: one of :data:`MODEL_STATUSES`.
            seed, hyperparameters, epochs, best_epoch, wall_time_s, val_accuracy, val_loss,
                test_accuracy, scores, model_path, model_sha256: what is known about the model
                (NaN → NULL; ``model_sha256`` is the saved file's SHA-256).
            metrics: metric rows written in the same transaction (see :meth:`record_metrics`).

        Returns:
            The model id.
        """
        if status not in MODEL_STATUSES:
            raise ValueError(f"status={status!r}: must be one of {', '.join(MODEL_STATUSES)}")
        fields = {"status": status, "seed": seed, "epochs": epochs, "best_epoch": best_epoch,
                  "hyperparameters": None if hyperparameters is None
                  else to_jsonable(dict(hyperparameters)),
                  "scores": None if scores is None else to_jsonable(dict(scores)),
                  "model_path": None if model_path is None else str(model_path),
                  "model_sha256": model_sha256}
        for label, value in (("wall_time_s", wall_time_s), ("val_accuracy", val_accuracy),
                             ("val_loss", val_loss), ("test_accuracy", test_accuracy)):
            fields[label] = check_number(label, value)
        values = {k: v for k, v in fields.items() if v is not None}
        values["git_commit"] = provenance.collect()["git_commit"]
        rows = None if metrics is None else metric_rows(metrics)
        trial = check_name("trial", str(trial))

        def run(conn) -> int:
            stamp = now()
            stmt = upsert(self.dialect, "models", ("search_id", "trial"),
                          (*values, "updated_at"), returning="id")
            try:
                model_id = conn.execute(stmt, {"search_id": int(search_id), "trial": trial,
                                               "created_at": stamp, "updated_at": stamp,
                                               **values}).scalar_one()
            except IntegrityError:
                raise ValueError(f"search_id={search_id!r} is not a recorded search") from None
            if rows:
                self._upsert_metrics(conn, model_id, rows)
            return model_id

        return self._transaction(run, write=True)

    def discard_model(self, search_id: int, trial: str) -> None:
        """Mark a model ``discarded`` and drop its test results and metrics (its saved file was
        damaged: it is trained and evaluated again, and overwrites this row)."""
        trial = check_name("trial", str(trial))

        def run(conn) -> None:
            key = (models.c.search_id == int(search_id)) & (models.c.trial == trial)
            model_id = conn.execute(select(models.c.id).where(key)).scalar()
            if model_id is None:
                raise ValueError(f"trial {trial!r} of search {search_id!r} is not recorded")
            conn.execute(delete(metrics).where(metrics.c.model_id == model_id))
            conn.execute(update(models).where(key).values(
                status="discarded", test_accuracy=None, model_sha256=None, updated_at=now()))

        self._transaction(run, write=True)

    def record_metrics(self, model_id: int,
                       rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> int:
        """Insert or update metric values of one model (upsert on the metric key).

        Args:
            model_id: from :meth:`record_model`.
            rows: mappings (or a DataFrame) with ``metric`` and ``value`` and optionally
                ``dataset`` (default ``"test"``), ``explainer`` and ``region`` (default ``""``),
                ``class_name`` (default ``"all"``) and ``n`` (number of images behind the
                value). NaN values are stored as NULL; a key repeated within ``rows`` keeps its
                last value.

        Returns:
            The number of distinct metric rows written.
        """
        normalised = metric_rows(rows)
        if normalised:
            self._transaction(lambda conn: self._upsert_metrics(conn, int(model_id), normalised),
                              write=True)
        return len(normalised)

    def _upsert_metrics(self, conn, model_id: int, rows: list[dict]) -> None:
        stmt = upsert(self.dialect, "metrics", ("model_id", *METRIC_KEY),
                      ("value", "n", "updated_at"))
        stamp = now()
        try:
            conn.execute(stmt, [{**row, "model_id": model_id, "updated_at": stamp} for row in rows])
        except IntegrityError:
            raise ValueError(f"model_id={model_id!r} is not a recorded model") from None

    # -- reading --------------------------------------------------------------------------
    def searches(self, **filters: str | Sequence[str] | None) -> pd.DataFrame:
        """All searches matching ``experiment``/``protocol``/``group``/``profile`` filters.

        Returns:
            One row per search (column ``group`` holds ``group_name``).
        """
        import pandas as pd

        stmt = select(searches).where(*search_filters(**filters)).order_by(searches.c.id)
        frame = pd.DataFrame(self._rows(stmt), columns=[c.name for c in searches.columns])
        return frame.rename(columns={"group_name": "group", "id": "search_id"})

    def models(self, *, experiment=None, protocol=None, group=None, profile=None,
               search_id: int | None = None, status: str | None = "completed") -> pd.DataFrame:
        """Models with their search's key, optionally filtered.

        Args:
            experiment, protocol, group, profile: a value or list of values to keep.
            search_id: keep one search only.
            status: keep this status (None: all).

        Returns:
            One row per model: ``model_id``, ``experiment``, ``protocol``, ``group``,
            ``profile``, ``search``, ``search_id``, ``trial``, the model columns, and one
            ``hp_<name>`` column per scalar hyperparameter.
        """
        import pandas as pd

        stmt = (select(models.c.id.label("model_id"), searches.c.experiment, searches.c.protocol,
                       searches.c.group_name.label("group"), searches.c.profile,
                       searches.c.name.label("search"),
                       *[models.c[c] for c in MODEL_COLUMNS if c != "id"])
                .join(searches, models.c.search_id == searches.c.id)
                .where(*search_filters(experiment, protocol, group, profile))
                .order_by(models.c.search_id, models.c.id))
        if search_id is not None:
            stmt = stmt.where(models.c.search_id == int(search_id))
        if status is not None:
            stmt = stmt.where(models.c.status == status)
        columns = ["model_id", "experiment", "protocol", "group", "profile", "search",
                   *[c for c in MODEL_COLUMNS if c != "id"]]
        frame = pd.DataFrame(self._rows(stmt), columns=columns)
        # Missing numbers read as NaN / <NA>, as the statistics expect, never as None.
        frame = frame.astype({**dict.fromkeys(("wall_time_s", "val_accuracy", "val_loss",
                                               "test_accuracy"), float),
                              **dict.fromkeys(("seed", "epochs", "best_epoch"), "Int64")})
        hps = pd.DataFrame([h if isinstance(h, dict) else {} for h in frame["hyperparameters"]],
                           index=frame.index)
        for name in hps.columns:
            if hps[name].map(lambda v: v is None or isinstance(v, (int, float, str, bool))).all():
                frame[f"hp_{name}"] = hps[name]
        return frame

    def metrics(self, *, experiment=None, protocol=None, group=None, profile=None,
                metric: str | None = None, dataset: str | None = None,
                class_name: str | None = None) -> pd.DataFrame:
        """Metric values in long form with their model's key.

        Returns:
            Columns ``model_id``, ``experiment``, ``protocol``, ``group``, ``profile``,
            ``trial``, ``dataset``, ``metric``, ``explainer``, ``region``, ``class_name``,
            ``value`` (NaN where undefined), ``n``.
        """
        import pandas as pd

        stmt = (select(metrics.c.model_id, searches.c.experiment, searches.c.protocol,
                       searches.c.group_name.label("group"), searches.c.profile, models.c.trial,
                       *[metrics.c[c] for c in (*METRIC_KEY, "value", "n")])
                .join(models, metrics.c.model_id == models.c.id)
                .join(searches, models.c.search_id == searches.c.id)
                .where(*search_filters(experiment, protocol, group, profile))
                .order_by(metrics.c.model_id, metrics.c.id))
        for column, value in (("metric", metric), ("dataset", dataset),
                              ("class_name", class_name)):
            if value is not None:
                stmt = stmt.where(metrics.c[column] == value)
        columns = ["model_id", "experiment", "protocol", "group", "profile", "trial",
                   *METRIC_KEY, "value", "n"]
        frame = pd.DataFrame(self._rows(stmt), columns=columns)
        frame["value"] = frame["value"].astype(float)
        return frame

    def metrics_wide(self, *, experiment=None, protocol=None, group=None, profile=None,
                     metric: str = "overlap", dataset: str = "test",
                     class_name: str = ALL_CLASSES, status: str | None = "completed"
                     ) -> pd.DataFrame:
        """One row per model with one column per explainer × region: what statistics read.

        Args:
            experiment, protocol, group, profile: filters (a value or a list).
            metric: which metric fills the columns (e.g. ``overlap``, ``accuracy``).
            dataset: which evaluation set.
            class_name: a class, or ``"all"``.
            status: model status to keep (None: all).

        Returns:
            The columns of :meth:`models` plus ``<explainer>_<region>`` columns (just
            ``<metric>`` when both are empty); NaN where a model lacks a value.
        """
        base = self.models(experiment=experiment, protocol=protocol, group=group,
                           profile=profile, status=status)
        long = self.metrics(experiment=experiment, protocol=protocol, group=group,
                            profile=profile, metric=metric, dataset=dataset,
                            class_name=class_name)
        if long.empty:
            return base
        long["column"] = [
            "_".join(part for part in (e, r) if part) or metric
            for e, r in zip(long["explainer"], long["region"])
        ]
        wide = long.pivot(index="model_id", columns="column", values="value")
        wide.columns.name = None
        return base.merge(wide, left_on="model_id", right_index=True, how="left")
