"""Experiments 1 and 2, the trained models as tidy tables: read from the results registry.

:class:`ExperimentResults` is built from the registry alone (:func:`collect_results`), so the
statistics and figures can be redone later, or on another machine that shares a PostgreSQL
registry, without training anything. TensorFlow-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import reanalysis, stats
from ...names import EXPLAINERS, LOSS_GROUPS, REGIONS
from ...synthetic.generator import CLASSES
from ...project.profiles import Profile
from .plan import COMPARED_REGIONS, search_specs

#: Columns of the per-model table shown in the chapters.
MODEL_COLUMNS = ["protocol", "group", "trial", "learning_rate", "epochs", "best_epoch",
                 "wall_time_s", "val_accuracy", "test_accuracy", "selected", "hirescam_heart",
                 "gradcam_heart", "saliency_heart"]


@dataclass
class ExperimentResults:
    """Tidy results of one experiment, read from the registry.

    Attributes:
        experiment: 1 or 2.
        profile: profile name.
        seed: base seed.
        results_dir: the profile's results folder.
        models: one row per model: protocol, group, trial, model_id, learning_rate, epochs,
            best_epoch, wall_time_s, val_accuracy, test_accuracy, model_path, selected
            (passes the protocol's validation-accuracy filter).
        metrics: long table of test metrics (model_id, metric, explainer, region, class_name,
            value, n).
        recipes: protocol → group → :class:`~heatmaploss.chapters.experiments.plan.GroupRecipe`.
    """

    experiment: int
    profile: str
    seed: int
    results_dir: Path
    models: pd.DataFrame
    metrics: pd.DataFrame
    recipes: dict = field(default_factory=dict)

    @property
    def protocols(self) -> list[str]:
        return list(self.recipes)

    def model_scores(self, metric: str = "overlap") -> pd.DataFrame:
        """Model-level scores, one row per model, one column per ``<explainer>_<region>``.

        A model's score is :func:`heatmaploss.reanalysis.model_score` of its four class
        averages — the unweighted mean, NaN when a class average is NaN — exactly as notebook 02
        scores the thesis's published models.

        Args:
            metric: ``overlap`` (maps without positive mass left out of the class averages) or
                ``overlap_with_empty`` (such maps counted as putting no mass anywhere).
        """
        rows = self.metrics[(self.metrics["metric"] == metric)
                            & (self.metrics["class_name"].isin(CLASSES))]
        if rows.empty:
            return pd.DataFrame(index=pd.Index([], name="model_id"))
        classes = rows.pivot_table(index=["model_id", "explainer", "region"],
                                   columns="class_name", values="value", aggfunc="first",
                                   dropna=False).reindex(columns=list(CLASSES))
        score = pd.Series([reanalysis.model_score(v) for v in classes.to_numpy(dtype=float)],
                          index=classes.index)
        wide = score.unstack(["explainer", "region"])
        wide.columns = [f"{e}_{r}" for e, r in wide.columns]
        return wide

    def overlap_table(self) -> pd.DataFrame:
        """Model-level overlaps: one row per model, one column per ``<explainer>_<region>``
        (:meth:`model_scores`), the same with empty maps counted (``..._with_empty``), and each
        explainer's share of maps without positive mass (``<explainer>_empty``)."""
        wide = self.model_scores("overlap")
        with_empty = self.model_scores("overlap_with_empty").add_suffix("_with_empty")
        empty = self.metrics[(self.metrics["metric"] == "empty_maps")
                             & (self.metrics["class_name"] == "all")]
        empty = empty.assign(share=empty["value"] / empty["n"]).pivot_table(
            index="model_id", columns="explainer", values="share", aggfunc="first")
        empty.columns = [f"{e}_empty" for e in empty.columns]
        table = self.models
        for extra in (wide, with_empty, empty):
            table = table.merge(extra, left_on="model_id", right_index=True, how="left")
        return table

    def scores(self, protocol: str, explainer: str, region: str,
               selected_only: bool = True, with_empty: bool = False) -> dict[str, np.ndarray]:
        """Group → model-level overlap scores (selected models; NaN kept).

        ``region="empty"`` gives each model's share of maps without positive mass instead;
        ``with_empty=True`` the scores with empty maps counted as putting no mass anywhere.
        """
        table = self.overlap_table()
        column = f"{explainer}_{region}" + ("_with_empty" if with_empty else "")
        out = {}
        for group in LOSS_GROUPS:
            rows = table[(table["protocol"] == protocol) & (table["group"] == group)]
            if selected_only:
                rows = rows[rows["selected"]]
            out[group] = rows[column].to_numpy(dtype=float) if column in rows else np.array([])
        return out

    def comparisons(self, protocol: str, with_empty: bool = False
                    ) -> dict[str, dict[str, dict[str, Any]]]:
        """``explainer → region →`` the CCE-vs-heatmap comparison of model-level overlaps.

        Models enter as notebook 02 takes the thesis's published ones: validation accuracy
        above the protocol's threshold (``selected``), and a model with a NaN class average
        (a class whose maps all lack positive mass) is dropped (:func:`reanalysis.drop_reason`);
        the count is kept in ``n_dropped_nan``. With ``with_empty=True`` the scores count
        empty maps as zero mass inside every region, so nothing is dropped and a comparison is
        defined even when most maps are empty (the held-out Grad-CAM's case).

        Region ``empty`` (``with_empty=False`` only) compares the share of maps without
        positive mass. Each entry holds ``result`` (a :class:`~heatmaploss.stats.GroupComparison`,
        CCE first, or ``None`` with ``error`` saying why: too few models, constant scores),
        ``n_dropped_nan`` and ``p_holm`` (Holm-adjusted over this protocol's family of
        comparisons).
        """
        out: dict[str, dict[str, dict[str, Any]]] = {}
        family = []
        extra = () if with_empty else ("empty",)
        for explainer in EXPLAINERS:
            for region in COMPARED_REGIONS[self.experiment] + extra:
                groups = self.scores(protocol, explainer, region, with_empty=with_empty)
                cce, heatmap = (v[~np.isnan(v)] for v in groups.values())
                entry: dict[str, Any] = {
                    "result": None, "error": None, "p_holm": None,
                    "n_dropped_nan": [int(np.isnan(v).sum()) for v in groups.values()]}
                try:
                    entry["result"] = stats.compare_groups(cce, heatmap, seed=self.seed)
                    family.append(entry)
                except ValueError as exc:
                    entry["error"] = str(exc)
                    entry["n"] = [len(cce), len(heatmap)]
                out.setdefault(explainer, {})[region] = entry
        for explainer in EXPLAINERS:
            for region in REGIONS:
                # Keep every region's key (summary.json readers rely on it), saying why.
                out[explainer].setdefault(region, {
                    "result": None, "p_holm": None, "n_dropped_nan": [0, 0], "n": [0, 0],
                    "error": f"experiment {self.experiment} has no {region.replace('_', ' ')}"})
        if family:
            adjusted = stats.holm([e["result"].p_value for e in family]).p_adjusted
            for entry, p in zip(family, adjusted):
                entry["p_holm"] = float(p)
        return out

    def accuracy_table(self) -> pd.DataFrame:
        """Test accuracy per protocol and group (selected models): mean, sd, min, max, n."""
        chosen = self.models[self.models["selected"]]
        table = (chosen.groupby(["protocol", "group"])["test_accuracy"]
                 .agg(["count", "mean", "std", "min", "max"])
                 .rename(columns={"count": "n_models"}))
        per_class = self.metrics[(self.metrics["metric"] == "accuracy")
                                 & (self.metrics["class_name"] != "all")
                                 & self.metrics["model_id"].isin(chosen["model_id"])]
        if not per_class.empty:
            by_class = (per_class.pivot_table(index=["protocol", "group"], columns="class_name",
                                     values="value", aggfunc="mean"))
            table = table.join(by_class.add_prefix("acc_"))
        return table

    def training_time_table(self) -> pd.DataFrame:
        """Training wall time per protocol and group (all trained models)."""
        frame = self.models.assign(seconds_per_epoch=self.models["wall_time_s"]
                                   / self.models["epochs"])
        return (frame.groupby(["protocol", "group"])
                .agg(n_models=("model_id", "count"), mean_s=("wall_time_s", "mean"),
                     median_s=("wall_time_s", "median"), total_s=("wall_time_s", "sum"),
                     mean_epochs=("epochs", "mean"),
                     median_s_per_epoch=("seconds_per_epoch", "median")))



def collect_results(experiment: int, profile: Profile, seed: int, results_dir: str | Path,
                    registry: Any, protocols: str | tuple[str, ...] | None = None
                    ) -> ExperimentResults:
    """Build :class:`ExperimentResults` from the registry for this run's searches.

    Args:
        experiment: 1 or 2.
        profile: the run's profile.
        seed: the run's base seed.
        results_dir: the profile's results folder.
        registry: an open :class:`~heatmaploss.registry.Registry`.
        protocols: protocol names (default the profile's).
    """
    specs = search_specs(experiment, profile, seed, protocols)
    keys = {spec.key for spec, _ in specs}
    frame = registry.models(experiment=f"exp{experiment}", profile=profile.name)
    frame = frame[frame["search"].isin(keys)].copy()
    recipes: dict = {}
    for spec, recipe in specs:
        recipes.setdefault(spec.protocol, {})[spec.group] = recipe
    threshold = {(p, g): r.min_val_accuracy for p, gs in recipes.items() for g, r in gs.items()}
    frame["learning_rate"] = frame["hyperparameters"].map(lambda h: (h or {}).get("learning_rate"))
    frame["selected"] = [
        bool(acc > threshold[(p, g)]) and not pd.isna(test)
        for p, g, acc, test in zip(frame["protocol"], frame["group"], frame["val_accuracy"],
                                   frame["test_accuracy"])]
    metrics = registry.metrics(experiment=f"exp{experiment}", profile=profile.name, dataset="test")
    metrics = metrics[metrics["model_id"].isin(frame["model_id"])]
    return ExperimentResults(experiment=experiment, profile=profile.name, seed=seed,
                             results_dir=Path(results_dir), models=frame.reset_index(drop=True),
                             metrics=metrics.reset_index(drop=True), recipes=recipes)


__all__ = ["MODEL_COLUMNS", "ExperimentResults", "collect_results"]
