"""Damaged artefacts are detected, not trusted: a saved model, a Keras Tuner file or a cached
dataset that was truncated is moved aside with a warning naming it, and its work is redone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import search_support
from heatmaploss.project import files
from heatmaploss.project.paths import output_dirs
from heatmaploss.registry import Registry
from heatmaploss.runs import search
from heatmaploss.runs.study import run_study

pytestmark = pytest.mark.slow

SUPPORT = Path(__file__).resolve().parent / "search_support.py"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _models(results: Path):
    with Registry(results_dir=results) as registry:
        return registry.models(status=None).sort_values("trial").reset_index(drop=True)


def _mtimes(results: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (results / "models").rglob("*.keras")}


def _aside(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.damaged-*"))


def test_a_damaged_saved_model_is_set_aside_retrained_and_evaluated_again(tmp_path):
    study, out = search_support.toy_study(3), output_dirs(tmp_path)
    with Registry(results_dir=tmp_path) as registry:
        run_study(study, registry, out, progress=False)
    before = _models(tmp_path)
    assert before["model_sha256"].str.len().eq(64).all()
    assert before["test_accuracy"].notna().all()
    damaged = tmp_path / before.loc[1, "model_path"]
    _truncate(damaged)
    untouched = {k: v for k, v in _mtimes(tmp_path).items() if k != damaged.name}

    with pytest.warns(files.DamagedFileWarning, match=str(damaged)):
        with Registry(results_dir=tmp_path) as registry:
            run_study(study, registry, out, progress=False)
    after = _models(tmp_path)
    assert len(after) == 3 and after["trial"].is_unique
    assert (after["status"] == "completed").all() and after["test_accuracy"].notna().all()
    assert len(_aside(damaged.parent, damaged.name)) == 1  # kept for inspection
    assert files.sha256(damaged) == after.loc[1, "model_sha256"]  # retrained and recorded
    assert after.loc[1, "hyperparameters"] == before.loc[1, "hyperparameters"]
    assert {k: v for k, v in _mtimes(tmp_path).items() if k != damaged.name} == untouched
    with Registry(results_dir=tmp_path) as registry:
        assert len(registry.metrics(experiment="exp1")) == 3  # one accuracy per model, again


def test_damaged_keras_tuner_files_are_set_aside_and_the_search_continues(tmp_path):
    results = str(tmp_path)
    assert search_support.run(results, max_trials=3) == ["0", "1", "2"]
    project = search.project_dir(search_support.toy_spec(3), output_dirs(tmp_path))
    first = _models(tmp_path)
    mtimes = _mtimes(tmp_path)

    # A trial file: the trial runs again with the hyperparameters the registry recorded.
    trial_file = project / "trial_1" / "trial.json"
    _truncate(trial_file)
    with pytest.warns(files.DamagedFileWarning, match=str(trial_file)):
        assert search_support.run(results, max_trials=3) == ["0", "1", "2"]
    assert json.loads(trial_file.read_text())["status"] == "COMPLETED"
    assert len(_aside(trial_file.parent, "trial.json")) == 1
    again = _models(tmp_path)
    assert len(again) == 3
    assert again["hyperparameters"].tolist() == first["hyperparameters"].tolist()
    changed = {k for k, v in _mtimes(tmp_path).items() if mtimes[k] != v}
    assert changed == {"trial_1.keras"}  # only the lost trial was trained again

    # The tuner's own file: written again; nothing is retrained.
    tuner_file = project / "tuner0.json"
    tuner_file.write_text('{"trunc')
    mtimes = _mtimes(tmp_path)
    with pytest.warns(files.DamagedFileWarning, match=str(tuner_file)):
        assert search_support.run(results, max_trials=3) == ["0", "1", "2"]
    assert json.loads(tuner_file.read_text()) == {} and _mtimes(tmp_path) == mtimes


def test_a_damaged_oracle_file_is_rebuilt_from_the_trial_files(tmp_path):
    # A search of 4 trials killed while recording its third: trials 0 and 1 are finished.
    crashed = subprocess.run([sys.executable, str(SUPPORT), str(tmp_path), "4", "0",
                              "--crash-after", "3"], capture_output=True)
    assert crashed.returncode == 3, crashed.stderr.decode()[-2000:]
    first = _models(tmp_path)
    mtimes = _mtimes(tmp_path)
    project = search.project_dir(search_support.toy_spec(4), output_dirs(tmp_path))
    oracle_file = project / "oracle.json"
    _truncate(oracle_file)

    with pytest.warns(files.DamagedFileWarning, match=str(oracle_file)):
        assert search_support.run(str(tmp_path), max_trials=4) == ["0", "1", "2", "3"]
    state = json.loads(oracle_file.read_text())
    assert sorted(state["end_order"]) == ["0", "1", "2", "3"]
    final = _models(tmp_path)
    assert final["trial"].tolist() == ["0", "1", "2", "3"]
    assert final["hyperparameters"].tolist()[:3] == first["hyperparameters"].tolist()
    now = _mtimes(tmp_path)
    assert [now[f"trial_{i}.keras"] == mtimes[f"trial_{i}.keras"] for i in range(3)] == \
        [True, True, False]  # finished trials kept; the interrupted one ran again


def test_an_interrupted_replicate_study_resumes(tmp_path):
    # Keras Tuner 1.4.8's grid oracle forgets its order when reloaded: a replicate study that
    # was interrupted could not continue (KeyError in populate_space).
    crashed = subprocess.run([sys.executable, str(SUPPORT), str(tmp_path), "4", "0",
                              "--replicates", "--crash-after", "2"], capture_output=True)
    assert crashed.returncode == 3, crashed.stderr.decode()[-2000:]
    assert len(_models(tmp_path)) == 2
    assert search_support.run(str(tmp_path), 4, replicates=True) == ["0", "1", "2", "3"]
    final = _models(tmp_path)
    assert sorted(h["replicate"] for h in final["hyperparameters"]) == [0, 1, 2, 3]
    assert final["seed"].nunique() == 4


def test_a_damaged_cached_dataset_file_is_set_aside_and_written_again(tmp_path):
    from heatmaploss.acdc import fixture, load_patients

    root = fixture.write_fixture(tmp_path / "acdc", "small", seed=0)
    manifest = json.loads((root / files.MANIFEST_NAME).read_text())
    damaged = root / next(name for name in manifest if name.endswith("_frame01.nii.gz"))
    original = damaged.read_bytes()
    _truncate(damaged)
    others = {name: (root / name).stat().st_mtime_ns for name in manifest
              if "/patient" in name and not name.startswith(str(damaged.parent.relative_to(root)))}

    with pytest.warns(files.DamagedFileWarning, match=str(damaged)):
        fixture.write_fixture(tmp_path / "acdc", "small", seed=0)
    assert damaged.read_bytes() == original  # the patient was written again, identically
    assert len(_aside(damaged.parent, damaged.name)) == 1
    assert {name: (root / name).stat().st_mtime_ns for name in others} == others
    assert len(load_patients(root, "training")) == len(
        [n for n in manifest if n.startswith("training/") and n.endswith("Info.cfg")])
    # A complete, intact fixture is reused as it is.
    stamps = {name: (root / name).stat().st_mtime_ns for name in manifest}
    fixture.write_fixture(tmp_path / "acdc", "small", seed=0)
    assert {name: (root / name).stat().st_mtime_ns for name in manifest} == stamps
