"""Experiments 1 and 2, the figures: overlap histograms per explainer, per-class overlaps and
test accuracy of every model, the sex-marker distributions after the thesis's outlier filters,
and attribution overlays of one model per group.

The overlays load a trained model (TensorFlow, imported when drawn); the rest needs none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import plots
from ...names import EXPLAINERS, LOSS_GROUPS
from ...runs.spec import derive_seed
from ...synthetic import CLASSES
from .results import ExperimentResults

#: Every figure of the chapters (name pattern → what it shows); ``{a,b}`` is one of a or b,
#: ``<protocol>`` the protocol (``thesis``, ``controlled``).
FIGURES = {
    "exp{1,2}_<protocol>_{hirescam,gradcam,saliency}_heart_overlap_hist":
        "model-level heart overlap per group (bin width 0.02 on [0, 1], as the thesis)",
    "exp{1,2}_<protocol>_hirescam_heart_per_class":
        "every model's HiResCAM heart overlap per class, both groups",
    "exp{1,2}_<protocol>_test_accuracy": "every model's test accuracy, both groups",
    "exp2_<protocol>_hirescam_sex_marker_iqr{1_5,5}":
        "sex-marker overlap per group after the thesis's outlier filters, own x scales",
    "exp{1,2}_<protocol>_overlays_{cce,heatmap}":
        "HiResCAM and Grad-CAM of one (seeded, random) selected model per group, 4 images per "
        "class, one colour scale and a colour bar",
}


def per_class_overlaps(results: ExperimentResults, protocol: str, explainer: str = "hirescam",
                       region: str = "heart") -> dict[str, pd.DataFrame]:
    """Group → (selected models × classes) table of per-class overlaps (NaN: only empty maps)."""
    metrics = results.metrics
    chosen = results.models[(results.models["protocol"] == protocol)
                            & results.models["selected"]]
    rows = metrics[(metrics["metric"] == "overlap") & (metrics["explainer"] == explainer)
                   & (metrics["region"] == region) & metrics["class_name"].isin(CLASSES)]
    out = {}
    for group in LOSS_GROUPS:
        ids = chosen.loc[chosen["group"] == group, "model_id"]
        table = rows[rows["model_id"].isin(ids)].pivot_table(
            index="model_id", columns="class_name", values="value", aggfunc="first")
        out[group] = table.reindex(columns=list(CLASSES))
    return out


def save_figures(results: ExperimentResults, progress: bool = False) -> list[str]:
    """Write the chapter's figures; returns their names.

    * ``exp<N>_<protocol>_<explainer>_heart_overlap_hist`` — model-level heart overlap per group
      (bin width 0.02 on [0, 1], as the thesis), for every explainer;
    * experiment 2: ``exp2_<protocol>_hirescam_sex_marker_iqr{1_5,5}`` — sex-marker overlap per
      group after the thesis's outlier filters, side by side with separate x scales;
    * ``exp<N>_<protocol>_overlays_<group>`` — HiResCAM and Grad-CAM of a randomly chosen
      (seeded) selected model of each group, 4 images per class, one colour scale per figure;
    * ``exp<N>_<protocol>_hirescam_heart_per_class`` and ``exp<N>_<protocol>_test_accuracy``
      — every selected model per class, and every model's test accuracy (see :data:`FIGURES`).
    """
    from ...models import load_model
    from ...overlays import model_overlays

    figures = results.results_dir / "figures"
    n = results.experiment
    names = []

    def save(fig, name):
        names.append(plots.save(fig, name, figures))

    for protocol in results.protocols:
        for explainer in EXPLAINERS:
            groups = {g: v[~np.isnan(v)] for g, v in
                      results.scores(protocol, explainer, "heart").items()}
            label = plots.label(explainer)
            # A group without any model with a score is named in the legend.
            if any(len(v) for v in groups.values()):
                save(plots.overlap_histogram(
                    groups, title=f"Experiment {n} ({protocol} protocol): {label} mass "
                    "inside the heart", xlabel=f"fraction of {label} mass inside the heart"),
                    f"exp{n}_{protocol}_{explainer}_heart_overlap_hist")
        per_class = {g: t for g, t in per_class_overlaps(results, protocol).items() if len(t)}
        if len(per_class) == len(LOSS_GROUPS):
            save(plots.per_class_plot(
                per_class, ylim=(0, 1), ylabel="fraction of HiResCAM mass inside the heart",
                title=f"Experiment {n} ({protocol} protocol): HiResCAM mass inside the heart "
                "per class, selected models"), f"exp{n}_{protocol}_hirescam_heart_per_class")
        trained = results.models[results.models["protocol"] == protocol]
        accuracy = {g: trained.loc[trained["group"] == g, "test_accuracy"].dropna().to_numpy()
                    for g in LOSS_GROUPS}
        if all(len(v) for v in accuracy.values()):
            # Chance is drawn only when some model is near it (else it squeezes the dots).
            lowest = min(float(v.min()) for v in accuracy.values())
            save(plots.model_strip(
                accuracy, ylabel="test accuracy", ylim=(min(lowest - 0.02, 0.95), 1.005),
                references={"chance (4 classes)": 0.25} if lowest < 0.6 else None,
                title=f"Experiment {n} ({protocol} protocol): test accuracy, every trained "
                "model"), f"exp{n}_{protocol}_test_accuracy")
        if n == 2:
            groups = {g: v[~np.isnan(v)] for g, v in
                      results.scores(protocol, "hirescam", "sex_marker").items()}
            for k in (1.5, 5):
                if all(len(v) >= 3 for v in groups.values()):
                    save(plots.group_distributions(
                        groups, title=f"Experiment 2 ({protocol}): HiResCAM mass on the sex "
                        f"marker, {k} IQR filter", xlabel="fraction of HiResCAM mass on the marker",
                        iqr_k=k),
                        f"exp2_{protocol}_hirescam_sex_marker_iqr{k:g}".replace(".", "_"))
        for group in LOSS_GROUPS:
            rows = results.models[(results.models["protocol"] == protocol)
                                  & (results.models["group"] == group)]
            pool = rows[rows["selected"]] if rows["selected"].any() else rows
            if pool.empty:
                continue
            rng = np.random.default_rng(derive_seed("overlay", n, protocol, group, results.seed))
            row = pool.iloc[int(rng.integers(len(pool)))]
            model = load_model(results.results_dir / row["model_path"])
            title = (f"Experiment {n}, {protocol} protocol: maps of one {plots.label(group)} "
                     f"model for its predicted class\n(trial {row['trial']}, learning rate "
                     f"{row['learning_rate']:.2g}, test accuracy {row['test_accuracy']:.3f})")
            save(model_overlays(model, n, derive_seed("overlay-images", n, results.seed),
                                title=title), f"exp{n}_{protocol}_overlays_{group}")
    return names


__all__ = ["FIGURES", "per_class_overlaps", "save_figures"]
