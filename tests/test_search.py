"""Learning-rate searches: recorded once, resumable, never silently mixed up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import search_support
from heatmaploss.project.paths import output_dirs
from heatmaploss.runs import search
from heatmaploss.runs.spec import derive_seed

SUPPORT = Path(__file__).resolve().parent / "search_support.py"


def _models(results):
    from heatmaploss.registry import Registry

    with Registry(results_dir=results) as registry:
        return registry.models(status=None)


def _oracle_trials(results, spec):
    directory = search.project_dir(spec, output_dirs(results))
    return {json.loads(p.read_text())["trial_id"]: json.loads(p.read_text())
            for p in directory.glob("trial_*/trial.json")}


def test_derived_seeds_are_nonzero_and_stable():
    seeds = {derive_seed("oracle", i) for i in range(200)}
    assert 0 not in seeds and len(seeds) == 200
    assert derive_seed("a", 1) == derive_seed("a", 1)
    assert search_support.toy_spec(3).tuner_seed != 0


def test_each_trial_recorded_once_and_rerun_continues(tmp_path):
    done = search_support.run(str(tmp_path), max_trials=3)
    assert done == ["0", "1", "2"]
    first = _models(tmp_path)
    assert sorted(first["trial"]) == ["0", "1", "2"]
    assert first["model_path"].map(lambda p: (tmp_path / p).exists()).all()
    learning_rates = dict(zip(first["trial"], first["hyperparameters"]))

    # Same search again: nothing is retrained, nothing duplicated.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "models").rglob("*.keras")}
    assert search_support.run(str(tmp_path), max_trials=3) == ["0", "1", "2"]
    again = _models(tmp_path)
    assert len(again) == 3
    assert dict(zip(again["trial"], again["hyperparameters"])) == learning_rates
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "models").rglob("*.keras")} == before


def test_different_settings_in_same_directory_refused(tmp_path):
    search_support.run(str(tmp_path), max_trials=2)
    out = output_dirs(tmp_path)
    spec = search_support.toy_spec(2)
    changed = search_support.toy_spec(2, lr_max=0.5)
    with pytest.raises(search.SearchMismatchError, match="space"):
        search.check_fingerprint(changed, out)
    other_seed = search_support.toy_spec(2, seed=5)
    assert search.check_fingerprint(other_seed, out) != search.project_dir(spec, out)


def test_killed_search_resumes_with_every_model_recorded_once(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, str(SUPPORT), str(tmp_path), "4", "2.0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # Kill while trial 0's record is written or trial 1 trains: after the first row exists.
        while time.monotonic() < deadline:
            if (tmp_path / "registry.sqlite").exists() and len(_models(tmp_path)) >= 1:
                break
            assert proc.poll() is None, "search finished or crashed before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no trial recorded within 120 s")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    interrupted = _models(tmp_path)
    assert 1 <= len(interrupted) < 4

    done = search_support.run(str(tmp_path), max_trials=4)
    assert done == ["0", "1", "2", "3"]
    final = _models(tmp_path)
    assert sorted(final["trial"]) == ["0", "1", "2", "3"]  # each once
    oracle = _oracle_trials(tmp_path, search_support.toy_spec(4))
    for row in final.itertuples():
        # The registry's learning rate is the oracle's for that trial (the re-run trial reused
        # its hyperparameters instead of drawing new ones).
        expected = oracle[row.trial]["hyperparameters"]["values"]["learning_rate"]
        assert row.hyperparameters["learning_rate"] == pytest.approx(expected)
        assert (tmp_path / row.model_path).exists()
    assert not list((tmp_path / "models").rglob(".*"))  # no half-written model files
