"""Experiments 1 and 2, the figures: overlap histograms per explainer, the sex-marker
distributions after the thesis's outlier filters, and attribution overlays of one model per group.

The overlays load a trained model (TensorFlow, imported when drawn); the rest needs none.
"""

from __future__ import annotations

import numpy as np

from ... import plots
from ...names import EXPLAINER_LABELS, EXPLAINERS, LOSS_GROUP_LABELS, LOSS_GROUPS
from ...runs.spec import derive_seed
from .results import ExperimentResults


def save_figures(results: ExperimentResults, progress: bool = False) -> list[str]:
    """Write the chapter's figures; returns their names.

    * ``exp<N>_<protocol>_<explainer>_heart_overlap_hist`` — model-level heart overlap per group
      (bin width 0.02 on [0, 1], as the thesis), for every explainer;
    * experiment 2: ``exp2_<protocol>_hirescam_sex_marker_iqr{1_5,5}`` — sex-marker overlap per
      group after the thesis's outlier filters, side by side with separate x scales;
    * ``exp<N>_<protocol>_overlays_<group>`` — HiResCAM and Grad-CAM of a randomly chosen
      (seeded) selected model of each group, 4 images per class, one colour scale per figure.
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
            groups = {LOSS_GROUP_LABELS[g]: v[~np.isnan(v)] for g, v in
                      results.scores(protocol, explainer, "heart").items()}
            label = EXPLAINER_LABELS[explainer]
            # Drawn only when both groups have models with a score (see the empty-map shares).
            if all(len(v) for v in groups.values()):
                save(plots.overlap_histogram(
                    groups, title=f"Experiment {n} ({protocol} protocol): {label} mass "
                    "inside the heart", xlabel=f"fraction of {label} mass inside the heart"),
                    f"exp{n}_{protocol}_{explainer}_heart_overlap_hist")
        if n == 2:
            groups = {LOSS_GROUP_LABELS[g]: v[~np.isnan(v)] for g, v in
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
            title = (f"Experiment {n}, {protocol} protocol, {LOSS_GROUP_LABELS[group]} model "
                     f"(trial {row['trial']}, lr {row['learning_rate']:.2g}, test accuracy "
                     f"{row['test_accuracy']:.3f})")
            save(model_overlays(model, n, derive_seed("overlay-images", n, results.seed),
                                title=title), f"exp{n}_{protocol}_overlays_{group}")
    return names


__all__ = ["save_figures"]
