"""One visual language for every figure: one colour and one readable label per name.

Every figure of the project takes its colours from :data:`PALETTE` through :func:`color` (or
:func:`palette` for several names) and its legend and axis text from :func:`label`, so that
CCE is the same blue, HiResCAM the same vermillion and "marker shuffled" the same orange in
every chapter, and no internal name (``cce``, ``saliency_l2``, ``gradcam_conv3``) reaches a
reader. Both accept the project's names (:mod:`heatmaploss.names`) and their labels.

Compound names of the shortcut chapter (``<explainer>_<variant>``: ``hirescam_inside``,
``saliency_l2``, ``gradcam_conv3``, ``hirescam_adaptive`` ...) get a shade of their
explainer's colour and a label such as "saliency, L2 penalty". :func:`theme` is the seaborn
style every drawing function uses. No TensorFlow.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Iterable, Iterator

from ..names import EXPLAINER_LABELS, LOSS_GROUP_LABELS, REGION_LABELS

#: Colour of every name a figure may show (colour-blind-safe: Okabe–Ito and Paul Tol's sets).
PALETTE: dict[str, str] = {
    # loss groups: the thesis's experiments and the ACDC classifiers
    "cce": "#0072B2", "heatmap": "#D55E00",
    # explainers; in chapter 6 also the heatmap-loss groups named after the explainer inside
    "hirescam": "#D55E00", "gradcam": "#009E73", "saliency": "#CC79A7",
    # the shortcut chapter's test sets: where the decoy marker is
    "matched": "#56B4E9", "shuffled": "#E69F00", "absent": "#7F7F7F",
    # the synthetic classes, and sex
    "NOR": "#332288", "HCM": "#44AA99", "DCM": "#AA4499", "ARV": "#999933",
    "female": "#CC6677", "male": "#88CCEE",
    # regions a map's mass is measured in
    "heart": "#C1272D", "fat": "#E6AB02", "sex_marker": "#1B9E77", "decoy_marker": "#7570B3",
    # ACDC structures
    "RV": "#4477AA", "MYO": "#EE6677", "LV": "#228833",
    # protocols
    "thesis": "#555555", "controlled": "#000000",
}

#: Readable text of every name a figure may show.
LABELS: dict[str, str] = {
    **LOSS_GROUP_LABELS, **EXPLAINER_LABELS, **REGION_LABELS,
    "cross_entropy": "cross-entropy",
    "matched": "marker matched", "shuffled": "marker shuffled", "absent": "marker absent",
    "female": "female", "male": "male",
    "thesis": "thesis protocol", "controlled": "controlled protocol",
    "MYO": "LV myocardium", "RV": "RV cavity", "LV": "LV cavity",
}
#: Labels of the second part of a compound group name (``<explainer>_<variant>``).
VARIANT_LABELS = {
    "thesis": "thesis penalty", "outside_fraction": "outside-fraction penalty",
    "inside": "inside reward", "l2": "L2 penalty", "adaptive": "adaptive λ",
    "searched": "searched λ", "fixed": "fixed λ",
}
#: How far a variant's colour is from its explainer's (>0 lighter, <0 darker).
_VARIANT_SHADES = {"thesis": -0.35, "inside": 0.35, "l2": 0.45, "adaptive": -0.25,
                   "searched": 0.55, "fixed": 0.0}
_FALLBACK = ("#4D4D4D", "#8C510A", "#01665E", "#762A83", "#B35806", "#1B7837")


def _key(name: str) -> str:
    """The palette key of a name or of its label (case-insensitive for labels)."""
    if name in PALETTE or name in LABELS:
        return name
    lowered = str(name).lower()
    for key, text in LABELS.items():
        if text.lower() == lowered:
            return key
    return name


def _shade(colour: str, amount: float) -> str:
    from matplotlib.colors import to_hex, to_rgb

    rgb = to_rgb(colour)
    target = 1.0 if amount > 0 else 0.0
    return to_hex(tuple(c + (target - c) * abs(amount) for c in rgb))


def _split(name: str) -> tuple[str, str] | None:
    """``(base, variant)`` of a compound name whose base has a colour, else ``None``."""
    for base in sorted(PALETTE, key=len, reverse=True):
        if name.startswith(base + "_") and len(name) > len(base) + 1:
            return base, name[len(base) + 1:]
    return None


def color(name: str) -> str:
    """The colour of a group, explainer, test set, class, region or structure.

    Args:
        name: a project name (``"cce"``, ``"gradcam"``, ``"shuffled"`` ...), its label
            (``"CCE"``, ``"Grad-CAM"``), or a compound group name (``"saliency_l2"``).

    Returns:
        A hex colour; the same name always gets the same colour. Unknown names get a stable
        colour of their own (derived from the name), never one of the palette's.
    """
    key = _key(name)
    if key in PALETTE:
        return PALETTE[key]
    parts = _split(key)
    if parts:
        base, variant = parts
        amount = _VARIANT_SHADES.get(variant)
        if amount is None:  # e.g. a layer name: a stable shade per name
            amount = (-0.3, 0.3, -0.5, 0.5)[zlib.crc32(variant.encode()) % 4]
        return _shade(PALETTE[base], amount)
    return _FALLBACK[zlib.crc32(str(key).encode()) % len(_FALLBACK)]


def label(name: str) -> str:
    """Readable text for a name (``"cce"`` → ``"CCE"``, ``"saliency_l2"`` →
    ``"saliency, L2 penalty"``, ``"gradcam_conv3"`` → ``"Grad-CAM at conv3"``); a label or
    an unknown name comes back with underscores as spaces."""
    key = _key(name)
    if key in LABELS:
        return LABELS[key]
    parts = _split(key)
    if parts and parts[0] in LABELS:
        base, variant = parts
        if variant in VARIANT_LABELS:
            return f"{LABELS[base]}, {VARIANT_LABELS[variant]}"
        return f"{LABELS[base]} at {variant}"
    return str(name).replace("_", " ")


def palette(names: Iterable[str], *, labelled: bool = False) -> dict[str, str]:
    """``{name: colour}`` for seaborn's ``palette=`` (keys are the labels if ``labelled``)."""
    return {(label(n) if labelled else n): color(n) for n in names}


def source_title(title: str, source: str | None) -> str:
    """``title`` tagged with its data's origin when the data are not real.

    Args:
        title: the figure's title.
        source: ``"fixture"`` (the synthetic ACDC-format fixture), ``"acdc"`` / ``None``
            (real or unstated data: no tag).

    Returns:
        E.g. ``"U-Net validation Dice (synthetic fixture)"``.
    """
    return f"{title} (synthetic fixture)" if source == "fixture" else title


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """The seaborn style of every figure (white background, light grid, readable sizes).

    Inside it, one known warning is silenced: seaborn 0.13.2 (the latest release) passes
    ``vert=`` to matplotlib's ``bxp``, which matplotlib 3.11 deprecates; seaborn's fix
    (mwaskom/seaborn#3820) is merged but not released. Nothing else is filtered.
    """
    import warnings

    import matplotlib.pyplot as plt
    import seaborn as sns

    with sns.axes_style("whitegrid", {"grid.color": "0.9"}), plt.rc_context(
            {"axes.titlesize": "medium", "axes.labelsize": "medium", "legend.fontsize": "small",
             "legend.frameon": False, "figure.dpi": 100}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"vert: bool (was|will be) deprecated",
                                module="seaborn")
        yield


__all__ = ["LABELS", "PALETTE", "VARIANT_LABELS", "color", "label", "palette", "source_title",
           "theme"]
