"""Distributed search: a Keras Tuner chief oracle + 2 workers on localhost, one registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from heatmaploss import project
from heatmaploss.chapters.experiments import plan, run, workers
from heatmaploss.registry import Registry
from heatmaploss.runs import distributed
from heatmaploss.runs.study import register

pytestmark = pytest.mark.slow


def test_chief_and_two_workers_record_every_trial_once(tmp_path):
    ctx = project.open_run("smoke", 0, str(tmp_path), progress=False)
    specs = [spec for spec, _ in plan.search_specs(1, ctx.profile, 0, "controlled")]
    spec = next(s for s in specs if s.group == "cce")
    run.local_launcher(1, ctx, "controlled", 2)(spec)
    with Registry(results_dir=tmp_path) as registry:
        ids = {s.key: register(s, registry) for s in specs}
        models = registry.models(search_id=ids[spec.key])
        metrics = registry.metrics(experiment="exp1", profile="smoke", dataset="test")
    assert len(models) == spec.max_trials, models
    assert models["trial"].is_unique
    assert models["test_accuracy"].notna().all(), "workers evaluate the models they trained"
    assert set(metrics["model_id"]) == set(models["model_id"])
    assert models["hp_learning_rate"].nunique() == spec.max_trials
    logs = sorted((tmp_path / "tuner" / "logs").glob(f"{spec.key}-*.log"))
    assert [p.name.rsplit("-", 1)[1] for p in logs] == ["chief.log", "worker0.log", "worker1.log"]
    # Only the launched search ran.
    assert all(len(Registry(results_dir=tmp_path).models(search_id=i)) == 0
               for key, i in ids.items() if key != spec.key)
    # The chapter then finds the search finished: it trains nothing more.
    outcome = run.run_experiment(1, ctx, protocols="controlled", workers=2)
    assert set(outcome.models.loc[outcome.models["search"] == spec.key, "model_id"]) \
        == set(models["model_id"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers=0: must be a positive integer"):
        distributed.run_local_cluster(lambda *_: ["true"], "k", 0, Path("/tmp/x"))
    with pytest.raises(ValueError, match="tuner_id=''"):
        distributed.tuner_environment("", "127.0.0.1", 8000)
    with pytest.raises(ValueError, match="port=70000"):
        distributed.tuner_environment("w1", "127.0.0.1", 70000)
    with pytest.raises(SystemExit):
        workers.main(["worker", "--oracle", "nohostport", "--experiment", "1", "--profile",
                          "smoke", "--results-dir", "/tmp/x", "--search-key", "k"])
