"""run_all.py: argument checking, skipping finished notebooks, failure reporting, smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from heatmaploss.project.paths import REPO_ROOT

import run_all
from tools.notebook import write_notebook

PARAMS = 'profile: str = "quick"  # profile\nseed: int = 0  # seed\nresults_dir: str = ""  # out\nrate: float = 0.5  # a rate'


def _chapter(folder, name, body):
    folder.mkdir(exist_ok=True)
    write_notebook(folder / f"{name}.ipynb", [
        ("markdown", f"# {name}"), ("colab", None), ("parameters", PARAMS), ("code", body),
    ])


def _run(*args):
    return subprocess.run([sys.executable, "run_all.py", "--no-progress", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture
def chapters(tmp_path):
    nbdir = tmp_path / "nbs"
    _chapter(nbdir, "01_first", "from heatmaploss.project import files\nfiles.update_summary(results_dir, {'first': {'rate': rate}})")
    _chapter(nbdir, "02_second", "x = 1\nraise RuntimeError(f'boom {rate}')")
    return nbdir


@pytest.mark.parametrize("argv, message", [
    (["--profile", "tiny"], "--profile 'tiny': unknown profile; allowed: smoke, quick, thesis"),
    (["--param", "nope=1"], "--param nope: no selected notebook takes it"),
    (["--param", "rate=fast"], "parameter rate='fast' has type str; expected float"),
    (["--param", "seed=2"], "set it with --seed"),
    (["--param", "rate"], "expected NAME=VALUE"),
    (["--only", "07"], "--only 07: no such notebook; available: 01_first, 02_second"),
])
def test_bad_arguments_give_one_line_errors(chapters, tmp_path, capsys, argv, message):
    code = run_all.main(["--notebooks-dir", str(chapters), "--results-dir", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_unwritable_results_dir(chapters, tmp_path, capsys):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        target = blocker / "sub"
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    code = run_all.main(["--notebooks-dir", str(chapters), "--results-dir", str(target)])
    assert code == 2 and "choose a writable folder" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_skips_and_reports_failures(chapters, tmp_path):
    res = tmp_path / "res"
    first = _run("--notebooks-dir", str(chapters), "--results-dir", str(res), "--profile", "smoke",
                 "--only", "01", "--param", "rate=0.25")
    assert first.returncode == 0, first.stderr
    summary = json.loads((res / "smoke" / "summary.json").read_text())
    assert summary["first"] == {"rate": 0.25}
    assert summary["notebooks"]["01_first"]["status"] == "completed"
    assert (res / "smoke" / "notebooks" / "01_first.ipynb").exists()

    again = _run("--notebooks-dir", str(chapters), "--results-dir", str(res), "--profile", "smoke",
                 "--only", "01", "--param", "rate=0.25")
    assert "skip 01_first" in again.stdout

    failed = _run("--notebooks-dir", str(chapters), "--results-dir", str(res), "--profile", "smoke")
    assert failed.returncode == 1
    assert "02_second.ipynb failed in cell [" in failed.stderr and "RuntimeError: boom 0.5" in failed.stderr
    executed = res / "smoke" / "notebooks" / "02_second.ipynb"
    assert "boom" in executed.read_text(), "the failing notebook keeps its traceback"
    assert not list((res / "smoke" / "notebooks").glob(".*.running.ipynb"))


def test_bad_database_stops_before_any_notebook(chapters, tmp_path, capsys, monkeypatch):
    results = tmp_path / "r" / "quick"
    results.mkdir(parents=True)
    (results / "registry.sqlite").write_text("not a database")
    code = run_all.main(["--notebooks-dir", str(chapters), "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "is not an SQLite database" in err and err.count("\n") == 1, err
    assert (results / "registry.sqlite").read_text() == "not a database", "left untouched"

    monkeypatch.setenv("HEATMAPLOSS_DATABASE_URL", "mysql://user:secret@db/results")
    code = run_all.main(["--notebooks-dir", str(chapters), "--results-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "unsupported database URL scheme 'mysql'" in err and "secret" not in err


def test_path_parameters_and_sqlite_urls_resolve_against_the_current_folder(tmp_path):
    given = {"acdc_root": "data/acdc", "out_file": "~/x.csv", "results_dir": "",
             "database_url": "sqlite:///rel/x.sqlite", "rate": 0.5, "name_dir": 3}
    resolved = run_all.resolve_paths(given, tmp_path)
    assert resolved["acdc_root"] == str(tmp_path / "data" / "acdc")
    assert resolved["out_file"] == os.path.expanduser("~/x.csv")
    assert resolved["database_url"] == f"sqlite:///{(tmp_path / 'rel' / 'x.sqlite').as_posix()}"
    assert resolved["results_dir"] == "" and resolved["rate"] == 0.5 and resolved["name_dir"] == 3
    for url in ("sqlite:////abs/x.sqlite", "sqlite:///:memory:", "postgresql://u:p@h/db"):
        assert run_all.resolve_paths({"database_url": url}, tmp_path)["database_url"] == url


PATHS_PARAMS = (PARAMS + '\ndata_root: str = ""  # a folder given relative to the shell'
                '\ndatabase_url: str = ""  # registry URL')
PATHS_BODY = """import os
from heatmaploss.project import files
from heatmaploss.registry import Registry
Registry(database_url or None, results_dir=results_dir).close()
files.update_summary(results_dir, {'seen': {'data_root': data_root,
                                            'exists': os.path.isdir(data_root)}})"""


@pytest.mark.slow
def test_relative_paths_mean_the_folder_the_user_typed_them_in(tmp_path):
    """From the user's folder: a relative ``--param ..._root`` and a relative SQLite URL in
    ``$HEATMAPLOSS_DATABASE_URL`` reach the notebook (whose kernel runs in its own folder)
    as the folders the user meant, and run_all says which database it uses."""
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    write_notebook(nbdir / "01_paths.ipynb", [
        ("markdown", "# paths"), ("colab", None), ("parameters", PATHS_PARAMS),
        ("code", PATHS_BODY)])
    (tmp_path / "mydata" / "inner").mkdir(parents=True)
    env = {**os.environ, "HEATMAPLOSS_DATABASE_URL": "sqlite:///reldb/x.sqlite"}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_all.py"), "--no-progress", "--profile", "smoke",
         "--notebooks-dir", "nbs", "--results-dir", "res", "--param", "data_root=mydata/inner"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "res" / "smoke" / "summary.json").read_text())
    assert summary["seen"] == {"data_root": str(tmp_path / "mydata" / "inner"), "exists": True}
    assert (tmp_path / "reldb" / "x.sqlite").exists(), "the database is where the user meant"
    assert not (nbdir / "reldb").exists(), "not relative to the notebook's folder"
    assert not (tmp_path / "res" / "smoke" / "registry.sqlite").exists()
    database = f"database: sqlite:///{(tmp_path / 'reldb' / 'x.sqlite').as_posix()}"
    assert f"{database} ($HEATMAPLOSS_DATABASE_URL)" in done.stdout, done.stdout


def test_kernels_are_quiet_unless_verbose(monkeypatch, tmp_path):
    import papermill

    seen = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **kw: seen.append(kw))
    run_all.run_notebook(tmp_path / "a.ipynb", {}, tmp_path / "b.ipynb", progress=False)
    run_all.run_notebook(tmp_path / "a.ipynb", {}, tmp_path / "b.ipynb", progress=False,
                         verbose=True)
    assert seen[0]["extra_arguments"] == ["--IPKernelApp.log_level=CRITICAL"]
    assert seen[1]["extra_arguments"] == []
    monkeypatch.delenv("HEATMAPLOSS_VERBOSE", raising=False)
    code = run_all.main(["--verbose", "--list", "--notebooks-dir", str(REPO_ROOT / "notebooks")])
    assert code == 0 and os.environ["HEATMAPLOSS_VERBOSE"] == "1", "inherited by every kernel"
    monkeypatch.delenv("HEATMAPLOSS_VERBOSE")
