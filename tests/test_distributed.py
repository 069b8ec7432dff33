"""Distributed search: a Keras Tuner chief oracle + 2 workers on localhost, one registry."""

from __future__ import annotations

import pytest

from heatmaploss import distributed, experiments
from heatmaploss.registry import Registry

pytestmark = pytest.mark.slow


def test_chief_and_two_workers_record_every_trial_once(tmp_path):
    specs = experiments.search_specs(1, "smoke", 0, "controlled")
    spec = next(s for s in specs if s.recipe.group == "cce")
    with Registry(results_dir=tmp_path) as registry:
        ids = experiments.run_searches(1, "smoke", 0, tmp_path, registry, "controlled",
                                       progress=False, workers=2, only_key=spec.key)
        models = registry.models(search_id=ids[spec.key])
        metrics = registry.metrics(experiment="exp1", profile="smoke", dataset="test")
    assert len(models) == spec.max_trials, models
    assert models["trial"].is_unique
    assert models["test_accuracy"].notna().all(), "workers evaluate the models they trained"
    assert set(metrics["model_id"]) == set(models["model_id"])
    assert models["hp_learning_rate"].nunique() == spec.max_trials
    logs = sorted((tmp_path / "tuner" / "logs").glob(f"{spec.key}-*.log"))
    assert [p.name.rsplit("-", 1)[1] for p in logs] == ["chief.log", "worker0.log", "worker1.log"]
    # Other searches of the experiment were registered but not run.
    assert all(len(Registry(results_dir=tmp_path).models(search_id=i)) == 0
               for key, i in ids.items() if key != spec.key)


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers=0: must be a positive integer"):
        distributed.run_local_cluster(1, "smoke", 0, "/tmp/x", "k", 0)
    with pytest.raises(ValueError, match="tuner_id=''"):
        distributed.tuner_environment("", "127.0.0.1", 8000)
    with pytest.raises(ValueError, match="port=70000"):
        distributed.tuner_environment("w1", "127.0.0.1", 70000)
    with pytest.raises(SystemExit):
        distributed.main(["worker", "--oracle", "nohostport", "--experiment", "1", "--profile",
                          "smoke", "--results-dir", "/tmp/x", "--search-key", "k"])
