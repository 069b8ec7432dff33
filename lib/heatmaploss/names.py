"""The project's vocabulary: the names every module, table, figure and ``summary.json`` uses.

One place defines which explainers, regions, loss groups, test sets and loss settings exist,
and how each is written for a reader; every other module imports them from here. No
TensorFlow, no third-party import: anything may import this module.

Terms (``docs/design.md`` § Vocabulary):

* **explainer** — an attribution method that draws a heatmap of a classifier: HiResCAM and
  Grad-CAM (class activation maps at a conv layer) and input-gradient saliency.
* **region** — a set of image pixels a heatmap's mass is measured in (the heart, the fat bar,
  the sex marker, the decoy marker).
* **loss group** — the models of a comparison trained without (``cce``) or with (``heatmap``)
  the heatmap term.
* **test set** — the shortcut chapter's three test sets: the decoy marker as in training
  (``matched``), independent of the class (``shuffled``) or removed (``absent``).
* **experiment** — a named comparison recorded in the results registry: ``exp1`` and ``exp2``
  (the thesis's two experiments, on the synthetic data of the same number), ``decoy`` (the
  shortcut chapter), ``acdc_segmentation`` and ``acdc_classifier``.
"""

from __future__ import annotations

#: Class activation maps at a conv layer.
CAM_EXPLAINERS = ("hirescam", "gradcam")
#: Every explainer the project computes; also the attribution methods a loss may contain.
EXPLAINERS = CAM_EXPLAINERS + ("saliency",)
EXPLAINER_LABELS = {"hirescam": "HiResCAM", "gradcam": "Grad-CAM", "saliency": "saliency"}

#: Regions of the thesis's evaluation (experiment 1 has no sex marker).
REGIONS = ("heart", "sex_marker", "fat")
#: Every region an evaluation may measure: the thesis's, the shortcut chapter's marker (the
#: square drawn in the image) and the four squares where a marker can sit (drawn or not).
MEASURABLE_REGIONS = REGIONS + ("decoy_marker", "decoy_corners")
REGION_LABELS = {"heart": "heart", "sex_marker": "sex marker", "fat": "fat",
                 "decoy_marker": "decoy marker", "decoy_corners": "decoy corners"}

#: Loss groups: cross-entropy only, and cross-entropy plus the heatmap term.
LOSS_GROUPS = ("cce", "heatmap")
LOSS_GROUP_LABELS = {"cce": "CCE", "heatmap": "heatmap loss"}

#: Test sets of the shortcut chapter: where the decoy marker is.
TEST_SETS = ("matched", "shuffled", "absent")

#: Penalty forms of the heatmap term (``inside`` is the "must look here" term; ``rrr`` is Ross
#: et al.'s squared input gradient summed over the irrelevant region).
PENALTIES = ("thesis", "outside_fraction", "l2", "rrr", "inside")
#: Classification terms: softmax cross-entropy on logits; MSE of sigmoid outputs and
#: categorical cross-entropy of sigmoid outputs (the thesis's heatmap and CCE groups).
CLASSIFICATION_TERMS = ("cce", "mse", "sigmoid_cce")
#: How a mask reaches an attribution map's grid: the share of each cell it covers (``area``),
#: or bilinear resizing as the thesis did (close to sampling the mask at cell centres).
MASK_RESIZES = ("area", "bilinear")
#: Which class's score an attribution map explains.
CLASS_MODES = ("true", "predicted")
#: What an attribution map differentiates (the explanation target), for class c: its logit
#: z_c; its log-softmax log p_c; its margin z_c − max_{k≠c} z_k; or Σ_k log p_k, the target of
#: Ross et al.'s "right for the right reasons" penalty (the same for every class).
TARGETS = ("logit", "log_softmax", "margin", "log_prob_sum")

#: Classification tasks of the ACDC chapter: normal vs diseased, and the five groups.
ACDC_TASKS = ("binary", "groups")

#: Registry names of the experiments (see the module docstring).
EXPERIMENTS = ("exp1", "exp2", "decoy", "acdc_segmentation", "acdc_classifier")


def check(kind: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``.

    Args:
        kind: what the value names, for the message (``"explainer"``, ``"region"``...).
        value: the name to check.
        allowed: the names allowed.

    Raises:
        ValueError: naming the value and the allowed names.
    """
    if value not in allowed:
        raise ValueError(f"{kind}={value!r}: allowed {', '.join(allowed)}")
    return value  # type: ignore[return-value]


__all__ = ["ACDC_TASKS", "CAM_EXPLAINERS", "CLASSIFICATION_TERMS", "CLASS_MODES", "EXPERIMENTS",
           "EXPLAINERS", "EXPLAINER_LABELS", "LOSS_GROUPS", "LOSS_GROUP_LABELS",
           "MASK_RESIZES", "MEASURABLE_REGIONS", "PENALTIES", "REGIONS", "REGION_LABELS", "TARGETS", "TEST_SETS",
           "check"]
