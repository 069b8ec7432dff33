"""Clinical measurements on ACDC masks: ventricular volumes, ejection fractions, myocardial
volume and mass, myocardial wall thickness per slice, and body size from ``Info.cfg``.

These are the measurements from which the challenge's best teams diagnosed patients
(``docs/acdc.md`` § The thesis's ACDC work). They work on any label volume in ACDC's coding
(0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity) — the organisers' masks or a
network's prediction — given the voxel spacing of the grid the mask lies on, so every number
is in physical units: volumes in ml (cm³), thickness in mm, mass in g, body surface area in m².

    features = patient_features(ed_mask, es_mask, spacing=(2.5, 2.5, 5.0), height=172.0,
                                weight=76.0)
    features["lv_ef"], features["myo_mass"]

No TensorFlow.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: Label value of each structure in ACDC masks.
RV_CAVITY, MYOCARDIUM, LV_CAVITY = 1, 2, 3
#: Myocardial tissue density (g/ml), the usual value for converting volume to mass.
MYOCARDIAL_DENSITY = 1.05
#: The per-patient features of :func:`patient_features`, in this order.
FEATURES = (
    "lv_edv", "lv_esv", "lv_ef", "rv_edv", "rv_esv", "rv_ef",
    "myo_ed", "myo_es", "myo_mass",
    "rv_lv_edv_ratio", "rv_lv_esv_ratio", "myo_lv_ed_ratio",
    "thickness_max_ed", "thickness_mean_ed", "thickness_sd_ed",
    "thickness_max_es", "thickness_mean_es", "thickness_sd_es",
    "height", "weight", "bsa",
)


def _check(labels: np.ndarray, spacing, dims: int) -> tuple[np.ndarray, tuple[float, ...]]:
    labels = np.asarray(labels)
    spacing = tuple(float(s) for s in spacing)
    if labels.ndim != dims:
        raise ValueError(f"labels have shape {labels.shape}; expected {dims}-D")
    if len(spacing) < dims or any(not s > 0 for s in spacing[:dims]):
        raise ValueError(f"spacing={spacing!r}: expected {dims} positive voxel sizes (mm)")
    return labels, spacing[:dims]


def structure_volumes(labels: np.ndarray, spacing) -> dict[str, float]:
    """Volume (ml) of the RV cavity, the LV myocardium and the LV cavity of one mask.

    Args:
        labels: (X, Y, Z) label volume.
        spacing: voxel size (x, y, z) in mm of the grid ``labels`` lies on.

    Returns:
        ``{"RV": ml, "MYO": ml, "LV": ml}``.
    """
    labels, spacing = _check(labels, spacing, 3)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return {name: float(np.count_nonzero(labels == value)) * voxel_ml
            for name, value in (("RV", RV_CAVITY), ("MYO", MYOCARDIUM), ("LV", LV_CAVITY))}


def slice_thickness(labels2d: np.ndarray, spacing) -> np.ndarray:
    """Myocardial wall thickness (mm) along the epicardial border of one short-axis slice.

    At every myocardium pixel on the outer border of the LV (myocardium next to a pixel that
    is neither myocardium nor LV cavity), the thickness is the in-plane distance to the
    nearest LV-cavity pixel (a Euclidean distance transform in mm, so anisotropic pixels are
    handled): a wall ``n`` pixels across measures ``n`` pixel widths.

    Args:
        labels2d: (X, Y) labels of one slice.
        spacing: pixel size (x, y) in mm.

    Returns:
        Thickness at each border pixel; empty when the slice has no myocardium or no LV
        cavity (apex and base: the wall has no inner border there).
    """
    labels2d, spacing = _check(labels2d, spacing, 2)
    myo, cavity = labels2d == MYOCARDIUM, labels2d == LV_CAVITY
    if not myo.any() or not cavity.any():
        return np.zeros(0)
    ventricle = myo | cavity
    border = myo & ~ndimage.binary_erosion(ventricle, border_value=0)
    distance = ndimage.distance_transform_edt(~cavity, sampling=spacing)
    return distance[border]


def wall_thickness(labels: np.ndarray, spacing) -> dict[str, float]:
    """Summaries of the myocardial wall thickness of one mask, slice by slice.

    Args:
        labels: (X, Y, Z) labels; z is the short-axis slice index.
        spacing: voxel size (x, y, z) in mm.

    Returns:
        ``max`` (thickest point of any slice), ``mean`` (mean over slices of each slice's
        mean thickness) and ``sd`` (mean over slices of each slice's standard deviation: how
        uneven the wall is around the ventricle, e.g. a thinned infarct sector or a thick
        septum); NaN when no slice has both myocardium and LV cavity.
    """
    labels, spacing = _check(labels, spacing, 3)
    per_slice = [t for t in (slice_thickness(labels[:, :, z], spacing[:2])
                             for z in range(labels.shape[2])) if t.size]
    if not per_slice:
        return {"max": math.nan, "mean": math.nan, "sd": math.nan}
    return {"max": float(max(t.max() for t in per_slice)),
            "mean": float(np.mean([t.mean() for t in per_slice])),
            "sd": float(np.mean([t.std() for t in per_slice]))}


def body_surface_area(height_cm: float, weight_kg: float) -> float:
    """Body surface area (m²) by Mosteller's formula, sqrt(height · weight / 3600).

    Raises:
        ValueError: for a non-positive height or weight.
    """
    if not height_cm > 0 or not weight_kg > 0:
        raise ValueError(f"height={height_cm!r} cm, weight={weight_kg!r} kg: must be positive")
    return math.sqrt(height_cm * weight_kg / 3600.0)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def patient_features(ed: np.ndarray, es: np.ndarray, spacing, height: float,
                     weight: float) -> dict[str, float]:
    """The per-patient measurements of :data:`FEATURES` from end-diastolic and end-systolic
    masks.

    Args:
        ed, es: (X, Y, Z) label volumes at end-diastole and end-systole, on one grid.
        spacing: voxel size (x, y, z) in mm of that grid.
        height: cm (``Info.cfg``).
        weight: kg (``Info.cfg``).

    Returns:
        ``lv_edv``, ``lv_esv``, ``rv_edv``, ``rv_esv`` (ml); ``lv_ef``, ``rv_ef`` (fractions,
        (EDV − ESV) / EDV); ``myo_ed``, ``myo_es`` (myocardial volume, ml); ``myo_mass``
        (g, end-diastolic volume × 1.05 g/ml); the ratios RV/LV at ED and ES and myocardium/LV
        cavity at ED; wall thickness ``thickness_{max,mean,sd}_{ed,es}`` (mm, see
        :func:`wall_thickness`); ``height``, ``weight`` and ``bsa`` (m²). A quantity whose
        denominator is empty (no LV in a poor prediction) is NaN.
    """
    if np.shape(ed) != np.shape(es):
        raise ValueError(f"ED mask {np.shape(ed)} and ES mask {np.shape(es)}: must match")
    v_ed, v_es = structure_volumes(ed, spacing), structure_volumes(es, spacing)
    t_ed, t_es = wall_thickness(ed, spacing), wall_thickness(es, spacing)
    out = {
        "lv_edv": v_ed["LV"], "lv_esv": v_es["LV"],
        "lv_ef": _ratio(v_ed["LV"] - v_es["LV"], v_ed["LV"]),
        "rv_edv": v_ed["RV"], "rv_esv": v_es["RV"],
        "rv_ef": _ratio(v_ed["RV"] - v_es["RV"], v_ed["RV"]),
        "myo_ed": v_ed["MYO"], "myo_es": v_es["MYO"],
        "myo_mass": v_ed["MYO"] * MYOCARDIAL_DENSITY,
        "rv_lv_edv_ratio": _ratio(v_ed["RV"], v_ed["LV"]),
        "rv_lv_esv_ratio": _ratio(v_es["RV"], v_es["LV"]),
        "myo_lv_ed_ratio": _ratio(v_ed["MYO"], v_ed["LV"]),
        **{f"thickness_{k}_ed": v for k, v in t_ed.items()},
        **{f"thickness_{k}_es": v for k, v in t_es.items()},
        "height": float(height), "weight": float(weight),
        "bsa": body_surface_area(height, weight),
    }
    return {name: out[name] for name in FEATURES}


__all__ = ["FEATURES", "LV_CAVITY", "MYOCARDIAL_DENSITY", "MYOCARDIUM", "RV_CAVITY",
           "body_surface_area", "patient_features", "slice_thickness", "structure_volumes",
           "wall_thickness"]
