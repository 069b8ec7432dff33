"""Per-image geometry of the synthetic MRIs: who each individual is and where things go.

This module turns per-image random variates (uniforms and standard normals, drawn by
:mod:`heatmaploss.synthetic`) into the thesis's anatomy — sex, size multiplier, ventricle
radii and wall thicknesses, body fat, ARV subtype and fat infiltration — and then into
pixel coordinates laid out the way the thesis's generator placed them. Every function here
is a pure, vectorised function of its inputs: the class of an image only changes the
*parameters* applied to the variates, never which variates are drawn, so the same seed gives
the same individuals under every option (see ``difficulty``).

Facts (``docs/thesis.md`` §2): geometry = ratio × 25 × s with NOR ratios RV cavity 2.5/17, RV wall 1/17,
LV cavity 3.5/17, LV wall 1.5/17 and the class multipliers in :data:`CLASS_MULTIPLIERS`.
"""

from __future__ import annotations

import numpy as np

HEIGHT, WIDTH = 105, 135
LENGTH_SCALE = 25.0
#: NOR geometry ratios (multiplied by 25 × size multiplier to get pixels).
NOR_RATIOS = {"rv_cavity": 2.5 / 17, "rv_wall": 1 / 17, "lv_cavity": 3.5 / 17, "lv_wall": 1.5 / 17}
#: Class multipliers of the NOR ratios: (common value, rare value, P(rare)) per measure.
#: ARV rows are per subtype (fatty, fatty-fibro), each half of the ARV class.
CLASS_MULTIPLIERS = {
    "NOR": {"rv_wall": (1.0, 1.0, 0.0), "rv_cavity": (1.0, 1.0, 0.0),
            "lv_wall": (1.0, 1.0, 0.0), "lv_cavity": (1.0, 1.0, 0.0)},
    "HCM": {"rv_wall": (1.0, 1.0, 0.0), "rv_cavity": (1.0, 1.2, 0.16),
            "lv_wall": (2.2, 2.2, 0.0), "lv_cavity": (0.4, 0.4, 0.0)},
    "DCM": {"rv_wall": (0.9, 0.9, 0.0), "rv_cavity": (1.2, 1.2, 0.0),
            "lv_wall": (0.8, 0.8, 0.0), "lv_cavity": (1.8, 1.8, 0.0)},
    "ARV_FATTY": {"rv_wall": (1.0, 1.0, 0.0), "rv_cavity": (1.5, 1.5, 0.0),
                  "lv_wall": (1.0, 1.0, 0.0), "lv_cavity": (1.0, 1.0, 0.0)},
    "ARV_FATTY_FIBRO": {"rv_wall": (1.0, 1.0, 0.0), "rv_cavity": (1.5, 1.5, 0.0),
                        "lv_wall": (0.9, 0.9, 0.0), "lv_cavity": (1.0, 1.2, 0.10)},
}
P_MALE = np.array([0.5, 0.6, 0.5, 2.7 / 3.7])  # NOR, HCM, DCM, ARV
#: ARV fat infiltration level ranges f ~ U[lo, hi]: RV (fatty, fatty-fibro) and LV.
RV_FAT_LEVEL = {1: (0.7, 0.9), 2: (0.3, 0.8)}
LV_FAT_LEVEL = (0.0, 0.4)
P_FATTY_LV = 0.1
#: Mean intensities (the thesis's colours) and the noise SD of the normal tissues.
FAT_INTENSITY, BLOOD_INTENSITY, MYOCARDIUM_INTENSITY = 0.9 * 255, 0.8 * 255, 0.2 * 255
MARKER_INTENSITY = 255
INTENSITY_SD = 2.0
FAT_BAR_ROWS = 4
FAT_OFFSET = {1: 10.0, 2: 18.0}
MIN_SIZE_MULTIPLIER = 0.3  # N(1, 0.15) reaches 0 only at 6.7 SD; keeps radii positive.

# Columns of the per-image variate matrices (drawn by synthetic.py in this order).
U_SEX, U_HCM_RV, U_ARV_SUBTYPE, U_ARV_LV, U_FATTY_LV, U_RV_FAT, U_LV_FAT, U_DECOY, \
    U_DECOY_OTHER, U_DECOY_SHUFFLED = range(10)
N_UNIFORMS = 10
Z_SIZE, Z_RV_WALL, Z_RV_CAVITY, Z_LV_WALL, Z_LV_CAVITY, Z_BODY_FAT = range(6)
N_NORMALS = 6

ARV = 3
DCM = 2
HCM = 1


def _shrink(multiplier: float | np.ndarray, difficulty: float) -> float | np.ndarray:
    """Move a class multiplier linearly toward NOR's 1 (exactly 1 at difficulty 1)."""
    return 1.0 + (1.0 - difficulty) * (np.asarray(multiplier, dtype=np.float64) - 1.0)


def sample_individuals(labels: np.ndarray, uniforms: np.ndarray, normals: np.ndarray,
                       experiment: int, variability: str, difficulty: float) -> dict[str, np.ndarray]:
    """Turn per-image variates into the thesis's individuals.

    Args:
        labels: (n,) class indices 0..3 (NOR, HCM, DCM, ARV).
        uniforms: (n, N_UNIFORMS) U[0, 1) variates.
        normals: (n, N_NORMALS) standard normal variates.
        experiment: 1 (sex-dependent sizes and fat) or 2 (sex-independent).
        variability: ``"thesis"`` (measure m becomes m + N(m, 0.02 m), as the published data)
            or ``"intended"`` (m + N(0, 0.02 m)).
        difficulty: 0 = the thesis's classes, 1 = every class distributed like NOR.

    Returns:
        Dict of (n,) arrays: ``is_male``, ``size_multiplier``, ``lv_cavity_radius``,
        ``lv_wall_thickness``, ``rv_cavity_radius``, ``rv_wall_thickness`` (pixels),
        ``body_fat_percent``, ``fat_length`` (pixels), ``arv_subtype`` (0 none, 1 fatty,
        2 fatty-fibro), ``fatty_lv`` (bool), ``rv_fat_level``, ``lv_fat_level`` (f of the
        fatty-myocardium intensity U[51, 51 + f·178.5]; 0 where not fatty).
    """
    n = labels.shape[0]
    u, z = uniforms, normals
    p_male = P_MALE[0] + (1.0 - difficulty) * (P_MALE[labels] - P_MALE[0])
    is_male = u[:, U_SEX] < p_male
    if experiment == 1:
        size = np.where(is_male, 1.3, 1.0) + 0.15 * z[:, Z_SIZE]
        size = np.maximum(size, MIN_SIZE_MULTIPLIER)
        fat_mean = np.where(is_male, 26.0, 36.4)
        fat_sd = np.where(is_male, 7.9, 9.7)
    else:
        size = np.ones(n)
        fat_mean = np.full(n, 31.0)
        fat_sd = np.full(n, 9.0)
    # DCM: obesity is a causal factor (+2 % body fat in both experiments).
    fat_mean = fat_mean + np.where(labels == DCM, 2.0 * (1.0 - difficulty), 0.0)
    body_fat = fat_mean + fat_sd * z[:, Z_BODY_FAT]

    is_arv = labels == ARV
    arv_subtype = np.where(is_arv, np.where(u[:, U_ARV_SUBTYPE] < 0.5, 1, 2), 0).astype(np.int8)
    class_keys = np.array(["NOR", "HCM", "DCM", "ARV_FATTY", "ARV_FATTY_FIBRO"])
    key_index = np.where(is_arv, 2 + arv_subtype, labels)  # 0..4 into class_keys
    rare_draw = {"rv_cavity": u[:, U_HCM_RV], "lv_cavity": u[:, U_ARV_LV]}
    z_col = {"rv_wall": Z_RV_WALL, "rv_cavity": Z_RV_CAVITY, "lv_wall": Z_LV_WALL,
             "lv_cavity": Z_LV_CAVITY}
    # The thesis's variability step added N(m, 0.02 m) to each measure m (``docs/thesis.md`` §2).
    base = 2.0 if variability == "thesis" else 1.0
    out: dict[str, np.ndarray] = {"is_male": is_male, "size_multiplier": size}
    for measure, ratio in NOR_RATIOS.items():
        table = np.array([CLASS_MULTIPLIERS[k][measure] for k in class_keys])  # (5, 3)
        common, rare, p_rare = table[key_index, 0], table[key_index, 1], table[key_index, 2]
        draw = rare_draw.get(measure, np.ones(n))
        multiplier = _shrink(np.where(draw < p_rare, rare, common), difficulty)
        nominal = ratio * LENGTH_SCALE * size * multiplier
        name = measure.replace("wall", "wall_thickness").replace("cavity", "cavity_radius")
        out[name] = nominal * (base + 0.02 * z[:, z_col[measure]])
    out["body_fat_percent"] = body_fat
    # Fat bar length: body fat % × s / 80 (max expected fat) × 70 (max expected heart length).
    out["fat_length"] = body_fat * size / 80.0 * 70.0
    out["arv_subtype"] = arv_subtype
    out["fatty_lv"] = is_arv & (u[:, U_FATTY_LV] < P_FATTY_LV)
    lo = np.where(arv_subtype == 1, RV_FAT_LEVEL[1][0], RV_FAT_LEVEL[2][0])
    hi = np.where(arv_subtype == 1, RV_FAT_LEVEL[1][1], RV_FAT_LEVEL[2][1])
    out["rv_fat_level"] = np.where(is_arv, lo + (hi - lo) * u[:, U_RV_FAT], 0.0)
    lv_level = LV_FAT_LEVEL[0] + (LV_FAT_LEVEL[1] - LV_FAT_LEVEL[0]) * u[:, U_LV_FAT]
    out["lv_fat_level"] = np.where(out["fatty_lv"], lv_level, 0.0)
    return out


def layout(ind: dict[str, np.ndarray], experiment: int) -> dict[str, np.ndarray]:
    """Place each individual's heart and fat bar in image coordinates.

    Follows the thesis's construction: a canvas just large enough for the heart (LV left,
    RV right, outer circles overlapping by ~1 px) and the fat bar (4 rows at its top, a gap of
    fat offset × s above the LV), centred in the 105 × 135 image; disc centres are rounded to
    whole pixels. Parts that would fall outside the image are clipped (the original raised).

    Args:
        ind: output of :func:`sample_individuals`.
        experiment: 1 or 2 (fat offset 10 or 18).

    Returns:
        Dict of (n,) arrays: ``centre_row``, ``lv_centre_col``, ``rv_centre_col`` (int64),
        outer/inner radii ``lv_outer``, ``lv_inner``, ``rv_outer``, ``rv_inner`` (float),
        ``fat_top``, ``fat_start``, ``fat_stop`` (int64; columns are half-open).
    """
    lv_outer = ind["lv_cavity_radius"] + ind["lv_wall_thickness"]
    rv_outer = ind["rv_cavity_radius"] + ind["rv_wall_thickness"]
    heart_len = 2.0 * (lv_outer + rv_outer)
    fat_len = ind["fat_length"]
    wide_fat = fat_len >= heart_len
    canvas_w = np.ceil(np.where(wide_fat, fat_len, heart_len)) + 2
    lv_cx = lv_outer + 1 + np.where(wide_fat, (fat_len - heart_len) / 2, 0.0)
    canvas_h = np.ceil(2 * lv_outer + FAT_OFFSET[experiment] * ind["size_multiplier"])
    rv_cx = lv_cx + lv_outer + rv_outer - 1
    cy = canvas_h - 1 - lv_outer
    fat_cx = np.floor(canvas_w / 2)
    # Canvas origin in the image: the thesis's int(round(free space) / 2), truncating to 0.
    row0 = np.trunc((HEIGHT - 1 - canvas_h) / 2).astype(np.int64)
    col0 = np.trunc((WIDTH - 1 - canvas_w) / 2).astype(np.int64)
    return {
        "centre_row": row0 + np.round(cy).astype(np.int64),
        "lv_centre_col": col0 + np.round(lv_cx).astype(np.int64),
        "rv_centre_col": col0 + np.round(rv_cx).astype(np.int64),
        "lv_outer": lv_outer, "lv_inner": ind["lv_cavity_radius"],
        "rv_outer": rv_outer, "rv_inner": ind["rv_cavity_radius"],
        "fat_top": row0,
        "fat_start": col0 + np.round(fat_cx - fat_len / 2).astype(np.int64),
        "fat_stop": col0 + np.round(fat_cx + fat_len / 2).astype(np.int64),
    }
