"""Rasterise a block of laid-out synthetic MRIs into segmentations and images, vectorised.

Speed comes from describing every image row as 11 runs of constant tissue (background, fat,
background, LV myocardium, LV cavity, LV myocardium, background, RV myocardium, RV cavity,
RV myocardium, background): the run boundaries follow from each disc's half-width on that row,
so a whole block's tissue pixels are listed with a few ``np.repeat`` calls and written with
one scatter. Intensities are drawn only for tissue pixels, as 16-bit quantile indices looked
up in per-tissue tables.

Disc membership follows the thesis's drawing routine: pixel (r, c) belongs to a disc of
radius R centred on the rounded centre (r0, c0) when (r − r0)² + (c − c0)² < R² (strict).
Drawing order (later wins): LV disc, RV disc, LV cavity, RV cavity, fat bar, then markers.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from scipy.special import ndtri

from . import geometry as geo

H, W = geo.HEIGHT, geo.WIDTH
N_LEVELS = 65536  # 16-bit quantile resolution of the intensity noise


class Tissue(IntEnum):
    """Segmentation codes (``SyntheticMRIs.segmentation``)."""

    BACKGROUND = 0
    LV_CAVITY = 1
    RV_CAVITY = 2
    LV_MYOCARDIUM = 3
    RV_MYOCARDIUM = 4
    FAT = 5
    SEX_MARKER = 6
    DECOY_MARKER = 7


HEART_TISSUES = (Tissue.LV_CAVITY, Tissue.RV_CAVITY, Tissue.LV_MYOCARDIUM, Tissue.RV_MYOCARDIUM)
_T = Tissue
#: The runs each image row is made of, left to right; boundaries between them are computed.
_RUN_CODES = np.array([_T.BACKGROUND, _T.FAT, _T.BACKGROUND, _T.LV_MYOCARDIUM, _T.LV_CAVITY,
                       _T.LV_MYOCARDIUM, _T.BACKGROUND, _T.RV_MYOCARDIUM, _T.RV_CAVITY,
                       _T.RV_MYOCARDIUM, _T.BACKGROUND], dtype=np.uint8)
_LV_MYO_RUNS = (3, 5)
_RV_MYO_RUNS = (7, 9)
_TISSUE_RUNS = tuple(int(j) for j in np.flatnonzero(_RUN_CODES))

#: Marker squares: the thesis's 9 × 9 male marker (rows 95–103, columns 125–133) and the
#: decoy's four corner squares of the same size (class k's corner: NOR top-left, HCM
#: top-right, DCM bottom-left, ARV bottom-right).
MARKER_SIZE = 9
SEX_MARKER_CORNER = (95, 125)
DECOY_CORNERS = ((1, 1), (1, 125), (95, 1), (95, 125))


def _quantiles() -> np.ndarray:
    """(N_LEVELS,) probabilities at the centres of 16-bit bins."""
    return (np.arange(N_LEVELS, dtype=np.float64) + 0.5) / N_LEVELS


_MYOCARDIUM_VALUES = geo.MYOCARDIUM_INTENSITY + geo.INTENSITY_SD * ndtri(_quantiles())


def _intensity_table() -> np.ndarray:
    """Flat uint8 table: tissue code × 65536 + quantile index → intensity (truncated)."""
    table = np.zeros((len(Tissue), N_LEVELS), dtype=np.uint8)
    z = ndtri(_quantiles())
    means = {_T.FAT: geo.FAT_INTENSITY, _T.LV_CAVITY: geo.BLOOD_INTENSITY,
             _T.RV_CAVITY: geo.BLOOD_INTENSITY}
    for code, mean in means.items():
        table[code] = np.clip(np.floor(mean + geo.INTENSITY_SD * z), 0, 255)
    for code in (_T.LV_MYOCARDIUM, _T.RV_MYOCARDIUM):
        table[code] = np.clip(np.floor(_MYOCARDIUM_VALUES), 0, 255)
    return table.ravel()


_TABLE = _intensity_table()


def _half_widths(rows: np.ndarray, centre_row: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(n, R) largest |column offset| inside the disc on each row; −1 where the row misses it."""
    dy = (rows[None, :] - centre_row[:, None]).astype(np.float64)
    h2 = radius[:, None] ** 2 - dy * dy
    inside = h2 > 0
    k = np.ceil(np.sqrt(np.where(inside, h2, 1.0))) - 1  # strict inequality of the disc
    return np.where(inside, k, -1).astype(np.int32)


def row_band(lay: dict[str, np.ndarray]) -> np.ndarray:
    """The rows that can hold anything for some image of the block (others are background)."""
    top = max(int(lay["fat_top"].min()), 0)
    bottom = int((lay["centre_row"] + np.ceil(lay["lv_outer"])).max()) + 1
    return np.arange(top, min(max(bottom, top + geo.FAT_BAR_ROWS), H))


def run_bounds(lay: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Column boundaries of the 11 runs (see ``_RUN_CODES``) on each of ``rows``.

    Args:
        lay: output of :func:`heatmaploss.synthetic.geometry.layout` for n images.
        rows: (R,) image rows.

    Returns:
        (12, n, R) int32, non-decreasing along the first axis from 0 to W: run j of a row
        covers columns ``bounds[j]`` to ``bounds[j + 1]`` (exclusive).
    """
    n = lay["centre_row"].shape[0]
    cy = lay["centre_row"]
    fat_row = (rows[None, :] >= lay["fat_top"][:, None]) & \
        (rows[None, :] < lay["fat_top"][:, None] + geo.FAT_BAR_ROWS)
    k = {}
    for name in ("lv_outer", "lv_inner", "rv_outer", "rv_inner"):
        # The fat bar is drawn over the heart; in the rare rows they share (s < ~0.45) the
        # heart is left out.
        k[name] = np.where(fat_row, -1, _half_widths(rows, cy, lay[name]))
    cl = lay["lv_centre_col"][:, None].astype(np.int32)
    cr = lay["rv_centre_col"][:, None].astype(np.int32)
    b = np.empty((12, n, rows.size), dtype=np.int32)
    b[0] = 0
    b[1] = np.where(fat_row, lay["fat_start"][:, None], 0)
    b[2] = np.where(fat_row, lay["fat_stop"][:, None], 0)
    b[3] = cl - k["lv_outer"]
    b[4] = cl - k["lv_inner"]
    b[5] = cl + k["lv_inner"] + 1
    b[7] = cr - k["rv_outer"]
    b[6] = np.minimum(cl + k["lv_outer"] + 1, b[7])
    b[8] = cr - k["rv_inner"]
    b[9] = cr + k["rv_inner"] + 1
    b[10] = cr + k["rv_outer"] + 1
    b[11] = W
    np.clip(b, 0, W, out=b)
    # Making boundaries non-decreasing gives later runs priority where discs overlap (the
    # LV cavity over the RV wall, the RV wall over the LV wall) and empties missed discs.
    for j in range(1, 12):
        np.maximum(b[j], b[j - 1], out=b[j])
    return b


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (s, l) pair, without a Python loop."""
    offsets = np.cumsum(lengths, dtype=np.int32) - lengths
    out = np.repeat(starts - offsets, lengths)
    out += np.arange(out.size, dtype=np.int32)
    return out


def render(lay: dict[str, np.ndarray], ind: dict[str, np.ndarray], rng: np.random.Generator,
           difficulty: float, images: np.ndarray, seg: np.ndarray) -> None:
    """Draw the heart and fat of n images into ``images`` and ``seg`` (markers come later).

    Args:
        lay: layout of the n images.
        ind: individuals (for the ARV fat levels).
        rng: generator for the per-pixel noise (consumed in a fixed pixel order).
        difficulty: 0..1; fatty myocardium intensities move toward normal myocardium
            (interpolating the two quantile functions: exactly normal myocardium at 1).
        images, seg: (n, H, W) uint8 C-contiguous outputs, overwritten.
    """
    if not (images.flags.c_contiguous and seg.flags.c_contiguous):
        raise ValueError("render writes through flat views: images and seg must be C-contiguous")
    n = lay["centre_row"].shape[0]
    rows = row_band(lay)
    b = run_bounds(lay, rows)
    row_base = ((np.arange(n, dtype=np.int32) * H)[:, None] + rows[None, :]) * W
    fatty = {j: ind["fatty_lv"] for j in _LV_MYO_RUNS}
    fatty.update({j: ind["arv_subtype"] > 0 for j in _RV_MYO_RUNS})
    level = {j: ind["lv_fat_level"] for j in _LV_MYO_RUNS}
    level.update({j: ind["rv_fat_level"] for j in _RV_MYO_RUNS})
    # Tissue runs as (start, length, code) in a fixed order (run type, image, row) that does
    # not depend on the class, so noise goes to the same pixels whatever the options.
    starts, lengths, codes, fatty_run, levels = [], [], [], [], []
    for j in _TISSUE_RUNS:
        length = (b[j + 1] - b[j]).ravel()
        keep = length > 0
        starts.append((b[j] + row_base).ravel()[keep])
        lengths.append(length[keep])
        codes.append(np.full(lengths[-1].size, _RUN_CODES[j], dtype=np.uint8))
        if j in fatty and fatty[j].any():
            flags = np.broadcast_to(fatty[j][:, None], (n, rows.size)).ravel()[keep]
            fatty_run.append(flags)
            levels.append(np.broadcast_to(level[j][:, None], (n, rows.size)).ravel()[keep][flags])
        else:
            fatty_run.append(np.zeros(lengths[-1].size, dtype=bool))
    start, length = np.concatenate(starts), np.concatenate(lengths)
    pixels = _ranges(start, length)
    code = np.repeat(np.concatenate(codes), length)
    noise = rng.integers(0, N_LEVELS, size=pixels.size, dtype=np.uint16)
    flat_seg, flat_images = seg.reshape(-1), images.reshape(-1)
    flat_seg[:] = 0
    flat_seg[pixels] = code
    lookup = code.astype(np.int32) << 16
    lookup |= noise
    flat_images[:] = 0
    flat_images[pixels] = _TABLE[lookup]
    if not levels:
        return
    # ARV: fatty myocardium, per pixel U[51, 51 + f·(229.5 − 51)] (RV always, LV in 10 %).
    fatty_run = np.concatenate(fatty_run)
    where = _ranges((np.cumsum(length, dtype=np.int32) - length)[fatty_run], length[fatty_run])
    f = np.repeat(np.concatenate(levels), length[fatty_run])
    q = (noise[where].astype(np.float64) + 0.5) / N_LEVELS
    span = geo.FAT_INTENSITY - geo.MYOCARDIUM_INTENSITY
    value = (1.0 - difficulty) * (geo.MYOCARDIUM_INTENSITY + f * span * q) \
        + difficulty * _MYOCARDIUM_VALUES[noise[where]]
    flat_images[pixels[where]] = np.clip(np.floor(value), 0, 255).astype(np.uint8)


def paint_markers(images: np.ndarray, seg: np.ndarray, is_male: np.ndarray | None,
                  decoy_class: np.ndarray) -> None:
    """Draw the sex marker (where ``is_male`` is given and true) and decoy squares in place.

    Args:
        images, seg: (n, H, W) uint8 arrays to modify.
        is_male: (n,) bool, or None when the experiment has no sex marker.
        decoy_class: (n,) int, the class whose corner gets the decoy square; −1 for none.
    """
    size = MARKER_SIZE
    if is_male is not None:
        r, c = SEX_MARKER_CORNER
        idx = np.flatnonzero(is_male)
        images[idx, r:r + size, c:c + size] = geo.MARKER_INTENSITY
        seg[idx, r:r + size, c:c + size] = Tissue.SEX_MARKER
    for k, (r, c) in enumerate(DECOY_CORNERS):
        idx = np.flatnonzero(decoy_class == k)
        images[idx, r:r + size, c:c + size] = geo.MARKER_INTENSITY
        seg[idx, r:r + size, c:c + size] = Tissue.DECOY_MARKER
