"""The results registry: round trips, idempotent re-runs, schema safety and one-line errors."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from heatmaploss.project import paths
from heatmaploss.registry import (
    SCHEMA_VERSION,
    Registry,
    RegistryConflictError,
    RegistryError,
)
from registry_support import database_url, postgres_base_url  # noqa: F401  (fixtures)

SEARCH = dict(experiment="exp1", protocol="controlled", group="heatmap", name="heatmap_s0",
              profile="smoke", seed=3, loss_config={"penalty": "outside_fraction", "weight": 1.0},
              hyperparameter_space={"learning_rate": [5e-6, 1e-3, "log"]})


def _overlap_rows(heart: float, gradcam: float) -> list[dict]:
    return [
        {"metric": "overlap", "explainer": "hirescam", "region": "heart", "value": heart, "n": 64},
        {"metric": "overlap", "explainer": "gradcam", "region": "heart", "value": gradcam},
        {"metric": "overlap", "explainer": "hirescam", "region": "heart", "class_name": "NOR",
         "value": heart / 2},
        {"metric": "accuracy", "value": 0.75},
    ]


def test_round_trip_and_reruns_update_in_place(database_url):
    registry = Registry(url=database_url)
    search_id = registry.get_or_create_search(**SEARCH)
    assert registry.get_or_create_search(**SEARCH) == search_id

    # A trial is recorded when it starts, then completed: one row, fields merged.
    first = registry.record_model(search_id, "trial_0", status="running", seed=11,
                                  hyperparameters={"learning_rate": 1e-4})
    again = registry.record_model(search_id, "trial_0", epochs=2, wall_time_s=12.5,
                                  val_accuracy=0.9, test_accuracy=float("nan"),
                                  model_path="models/t0.keras", metrics=_overlap_rows(0.6, 0.2))
    other = registry.record_model(search_id, "trial_1", seed=12, val_accuracy=0.8,
                                  hyperparameters={"learning_rate": 3e-4},
                                  metrics=pd.DataFrame(_overlap_rows(0.7, float("nan"))))
    assert first == again != other
    # Re-recording metrics replaces values, never adds rows.
    assert registry.record_metrics(other, _overlap_rows(0.8, 0.4)) == 4

    models = registry.models(experiment="exp1")
    assert list(models["trial"]) == ["trial_0", "trial_1"]
    row = models.iloc[0]
    assert (row["status"], row["seed"], row["epochs"], row["wall_time_s"]) == ("completed", 11, 2,
                                                                               12.5)
    assert row["hp_learning_rate"] == 1e-4 and row["model_path"] == "models/t0.keras"
    assert math.isnan(row["test_accuracy"]) and math.isnan(models.loc[1, "wall_time_s"])
    assert models["seed"].tolist() == [11, 12] and pd.isna(models.loc[1, "epochs"])
    assert (row["experiment"], row["protocol"], row["group"]) == ("exp1", "controlled", "heatmap")

    wide = registry.metrics_wide(experiment="exp1", protocol="controlled")
    assert wide["hirescam_heart"].tolist() == [0.6, 0.8]
    assert wide["gradcam_heart"].tolist() == [0.2, 0.4]
    per_class = registry.metrics_wide(experiment="exp1", class_name="NOR")
    assert per_class["hirescam_heart"].tolist() == [0.3, 0.4]
    accuracy = registry.metrics_wide(experiment="exp1", metric="accuracy")
    assert accuracy["accuracy"].tolist() == [0.75, 0.75]

    long = registry.metrics(metric="overlap")
    assert len(long) == 6 and set(long["class_name"]) == {"all", "NOR"}
    assert registry.models(status="running").empty
    assert registry.models(experiment="exp2").empty
    searches = registry.searches(group="heatmap")
    assert searches.loc[0, "loss_config"] == SEARCH["loss_config"]
    assert searches.loc[0, "versions"]["sqlalchemy"]
    registry.close()


def test_resumed_search_must_keep_its_configuration(database_url):
    registry = Registry(url=database_url)
    registry.get_or_create_search(**SEARCH)
    changed = dict(SEARCH, hyperparameter_space={"learning_rate": [5e-7, 5e-5, "log"]})
    with pytest.raises(RegistryConflictError, match="different hyperparameter_space: give this"):
        registry.get_or_create_search(**changed)
    assert len(registry.searches()) == 1
    assert registry.get_or_create_search(**dict(changed, name="heatmap_s0_narrow")) > 0


def test_bad_values_are_rejected_with_the_value_named(tmp_path):
    registry = Registry(results_dir=tmp_path)
    search_id = registry.get_or_create_search(**SEARCH)
    with pytest.raises(ValueError, match="status='done': must be one of running, completed"):
        registry.record_model(search_id, "t", status="done")
    with pytest.raises(ValueError, match="search_id=999 is not a recorded search"):
        registry.record_model(999, "t")
    with pytest.raises(ValueError, match="needs 'metric' and 'value'"):
        registry.record_metrics(1, [{"metric": "overlap"}])
    with pytest.raises(ValueError, match="allowed keys are class_name, dataset"):
        registry.record_metrics(1, [{"metric": "overlap", "value": 1, "explainr": "x"}])
    with pytest.raises(ValueError, match="model_id=42 is not a recorded model"):
        registry.record_metrics(42, [{"metric": "overlap", "value": 1.0}])
    with pytest.raises(ValueError, match="val_accuracy='high': must be a number"):
        registry.record_model(search_id, "t", val_accuracy="high")
    with pytest.raises(ValueError, match="experiment='': must be a non-empty string"):
        registry.get_or_create_search(**dict(SEARCH, experiment=""))
    assert registry.models(status=None).empty


def test_default_file_and_environment_override(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.DATABASE_URL_ENV, raising=False)
    with pytest.raises(ValueError, match="needs results_dir"):
        Registry()
    Registry(results_dir=tmp_path / "smoke").get_or_create_search(**SEARCH)
    assert (tmp_path / "smoke" / "registry.sqlite").is_file()
    monkeypatch.setenv(paths.DATABASE_URL_ENV, f"sqlite:///{tmp_path / 'shared.sqlite'}")
    shared = Registry(results_dir=tmp_path / "smoke")
    assert shared.source == f"${paths.DATABASE_URL_ENV}" and shared.searches().empty
    assert (tmp_path / "shared.sqlite").is_file()


def test_reopening_never_loses_rows(tmp_path):
    # Schema upgrades of older databases: tests/test_migrations.py.
    path = tmp_path / "registry.sqlite"
    registry = Registry(results_dir=tmp_path)
    model_id = registry.record_model(registry.get_or_create_search(**SEARCH), "t0",
                                     metrics=_overlap_rows(0.5, 0.5))
    registry.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = Registry(results_dir=tmp_path)
    assert reopened.models()["model_id"].tolist() == [model_id]
    assert reopened.record_metrics(model_id, _overlap_rows(0.1, 0.2)) == 4
    reopened.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == \
            (SCHEMA_VERSION,)
        assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (4,)


def test_registry_and_provenance_never_import_tensorflow():
    code = textwrap.dedent("""
        import sys
        from heatmaploss import registry
        from heatmaploss.project import provenance
        info = provenance.collect()
        assert "tensorflow" not in sys.modules, "registry imported TensorFlow"
        print(info["git_commit"], info["versions"]["tensorflow"], info["versions"]["keras-tuner"])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=paths.REPO_ROOT, check=True)
    commit, tf_version, tuner_version = done.stdout.split()
    assert len(commit.removesuffix("-dirty")) == 40 or shutil.which("git") is None
    assert tf_version[0].isdigit() and tuner_version[0].isdigit()


# -- one-line errors: each case names the value (password masked) and the fix ---------------
def _error(url: str) -> str:
    with pytest.raises(RegistryError) as info:
        Registry(url=url)
    message = str(info.value)
    assert "\n" not in message and "secret" not in message
    return message


def test_unsupported_scheme_and_non_url():
    assert _error("mysql://user:secret@db.example/results") == (
        "unsupported database URL scheme 'mysql' in 'mysql://user:***@db.example/results': use "
        "sqlite:///<path/to/file.sqlite> or postgresql+psycopg2://user:password@host:5432/dbname")
    assert _error("results/registry.sqlite").startswith(
        "database URL 'results/registry.sqlite' is not a URL: use sqlite:///")
    assert _error("postgresql+pg8000://user:secret@localhost/results").startswith(
        "no driver for 'postgresql+pg8000://user:***@localhost/results' (No module named "
        "'pg8000'): install it")


def test_postgres_url_that_does_not_connect():
    message = _error("postgresql+psycopg2://user:secret@127.0.0.1:1/results")
    assert message.startswith("cannot open the results database "
                              "'postgresql+psycopg2://user:***@127.0.0.1:1/results' (from url "
                              "argument): connection to server at \"127.0.0.1\", port 1 failed")
    assert message.endswith("check that the server is running and that host, port, user, "
                            "password and database are right, or unset "
                            "$HEATMAPLOSS_DATABASE_URL to use the SQLite file in the results "
                            "folder")


@pytest.mark.postgres
def test_postgres_wrong_password_and_missing_database():
    from sqlalchemy.engine import make_url

    url = make_url(postgres_base_url())
    wrong = url.set(password="secret-but-wrong").render_as_string(hide_password=False)
    assert "password authentication failed" in _error(wrong)
    missing = url.set(database="no_such_database").render_as_string(hide_password=False)
    assert 'database "no_such_database" does not exist' in _error(missing)


def test_file_that_is_not_a_database_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "registry.sqlite"
    path.write_text("model,accuracy\nm1,0.9\n")
    with pytest.raises(RegistryError) as info:
        Registry(results_dir=tmp_path)
    assert str(info.value) == (
        f"registry file '{path}' is not an SQLite database: move it aside (it is left "
        "untouched) or point HEATMAPLOSS_DATABASE_URL / the results dir elsewhere")
    assert path.read_text() == "model,accuracy\nm1,0.9\n"
    corrupt = tmp_path / "corrupt.sqlite"  # right header, garbage after it
    corrupt.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    assert _error(f"sqlite:///{corrupt}").startswith(
        f"registry file '{corrupt}' is not an SQLite database (file is not a database): move")
    assert corrupt.read_bytes()[:16] == b"SQLite format 3\x00"


def test_registry_path_that_is_a_folder(tmp_path):
    (tmp_path / "registry.sqlite").mkdir()
    assert _error(f"sqlite:///{tmp_path / 'registry.sqlite'}") == (
        f"registry path '{tmp_path / 'registry.sqlite'}' is a folder, not a database file: "
        "remove or rename it")


def test_results_dir_that_is_not_writable(tmp_path):
    (tmp_path / "a_file").write_text("")
    assert _error(f"sqlite:///{tmp_path / 'a_file' / 'smoke' / 'registry.sqlite'}") == (
        f"results folder '{tmp_path / 'a_file' / 'smoke'}' is not writable (Not a directory): "
        "choose a writable results dir (run_all.py --results-dir DIR) or fix its permissions")

    # A read-only folder. root ignores permissions, so drop that capability for the child.
    results = tmp_path / "readonly"
    results.mkdir()
    results.chmod(0o555)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a folder unwritable")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    code = ("from heatmaploss.registry import Registry, RegistryError\n"
            "try:\n    Registry(results_dir=%r)\n"
            "except RegistryError as exc:\n    print(exc)\n") % str(results)
    env = dict(os.environ)
    env.pop(paths.DATABASE_URL_ENV, None)
    done = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.strip() == (
        f"results folder '{results}' is not writable (Permission denied): choose a writable "
        "results dir (run_all.py --results-dir DIR) or fix its permissions")
    assert list(results.iterdir()) == []


def test_transient_errors_are_retried_and_others_are_not():
    from heatmaploss.registry.engine import parse_url, retry_transient
    from sqlalchemy.exc import OperationalError

    url = parse_url("sqlite:///registry.sqlite")
    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return "done"

    assert retry_transient(locked_twice, url) == "done" and len(calls) == 3

    def broken():
        calls.append(1)
        raise OperationalError("INSERT", {}, Exception("no such table: models"))

    calls.clear()
    with pytest.raises(OperationalError):
        retry_transient(broken, url)
    assert len(calls) == 1

    def always_locked():
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with pytest.raises(RegistryError, match=r"^results database 'sqlite:///registry.sqlite' "
                                            r"stayed busy for 0 s \(database is locked\): "):
        retry_transient(always_locked, url, budget_s=0.0)
