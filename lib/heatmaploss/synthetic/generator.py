"""The thesis's synthetic short-axis cardiac MRIs, calibrated to its published data.

    from heatmaploss import synthetic
    data = synthetic.generate(experiment=1, n_per_class=2500, seed=0)
    data.images.shape            # (10000, 105, 135) uint8
    data.region("heart")         # (10000, 105, 135) bool
    for chunk in synthetic.iter_batches(2, 25_000, seed=1, chunk_size=1000):
        x = synthetic.to_model_input(chunk.images)   # float32 (1000, 105, 135, 3) in [-1, 1]

Each image is a cross-section through both ventricles: the left ventricle (LV, left) and
right ventricle (RV, right) as rings of myocardium around blood, and a bar of subcutaneous fat
above them. Four classes (:data:`CLASSES`) differ in radii and wall thicknesses, ARV also by
fatty RV myocardium; sex changes the size (experiment 1) or adds a 9 × 9 marker (experiment 2).
See :mod:`.geometry` for the anatomy and :mod:`.render` for the drawing.

Options (keyword arguments of :func:`generate` and :func:`iter_batches`):

* ``variability`` — ``"thesis"`` (default): each radius/thickness m is drawn as
  m + N(m, 0.02 m), i.e. about twice the nominal size, as in the published data;
  ``"intended"``: m + N(0, 0.02 m), what the thesis's author meant.
* ``shuffle`` (default True) — interleave the classes in a seeded random order; False gives
  ``n_per_class`` NOR images, then HCM, DCM, ARV.
* ``difficulty`` in [0, 1] (default 0) — shrinks every class difference toward NOR
  linearly: geometry multipliers, P(male), DCM's extra body fat, and the ARV fatty-myocardium
  intensities (whose quantile function moves to normal myocardium's). At 1 all classes are
  distributed like NOR: the labels carry no information.
* ``decoy`` = ρ in [0, 1] or None (default) — a shortcut: a 9 × 9 square of intensity 255
  in the corner that encodes a class (NOR top-left, HCM top-right, DCM bottom-left, ARV
  bottom-right). It shows the true class with probability ρ, otherwise a random other class.
  Experiment 1 only (experiment 2's sex marker occupies the bottom-right corner).
* ``decoy_set`` — ``"matched"`` (default: agreement ρ), ``"shuffled"`` (the corner's class
  is uniform, independent of the label) or ``"absent"`` (no square): the test sets of the
  shortcut benchmark. Only the marker changes: the same seed gives the same hearts.

Known differences from the thesis's own generator (all rare or below a pixel's worth):
intensity noise is drawn from 16-bit quantile tables (exact up to 1/65536 in probability); a
drawing larger than the image is clipped (the original raised); the size multiplier is
floored at 0.3 (6.7 SD); in the rare rows where the fat bar meets the heart (s < ~0.45) the
heart is left out of those rows; where a fatty LV overlaps the RV disc by ~1 px, the overlap
keeps the RV's intensity.

Randomness: image i's variates come from a ``SeedSequence(seed, spawn_key=(0, i // 256))``
block, and the class order from ``spawn_key=(1,)``; so the same seed gives identical bytes
whatever the chunk size, and different options (difficulty, decoy) keep the same individuals.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np

from . import geometry as geo
from .render import DECOY_CORNERS, HEART_TISSUES, MARKER_SIZE, Tissue, paint_markers, render

CLASSES = ("NOR", "HCM", "DCM", "ARV")
EXPERIMENTS = (1, 2)
IMAGE_SHAPE = (geo.HEIGHT, geo.WIDTH)
BLOCK_SIZE = 256  # images per RNG block; part of the definition of a seed's data
VARIABILITIES = ("thesis", "intended")
DECOY_SETS = ("matched", "shuffled", "absent")
DEFAULT_OPTIONS: dict[str, Any] = {"variability": "thesis", "shuffle": True, "difficulty": 0.0,
                                   "decoy": None, "decoy_set": "matched"}
P_MALE = dict(zip(CLASSES, geo.P_MALE.tolist()))

#: Published facts of the thesis's data (``docs/thesis.md`` §2): per-class mean heart pixel fraction of
#: its 10,000-image test sets, fat fraction, P(male); sex-marker fraction = 81/14175·P(male).
THESIS_FACTS: dict[str, Any] = {
    "heart_fraction": {
        1: {"NOR": 0.0973, "HCM": 0.0959, "DCM": 0.1872, "ARV": 0.1372},
        2: {"NOR": 0.0710, "HCM": 0.0666, "DCM": 0.1368, "ARV": 0.0898},
    },
    "fat_fraction": {1: 0.009, 2: 0.008},
    "p_male": P_MALE,
    "sex_marker_fraction": {1: dict.fromkeys(CLASSES, 0.0),
                            2: {c: 81 / 14175 * p for c, p in P_MALE.items()}},
}

_REGIONS = {
    "heart": HEART_TISSUES,
    "fat": (Tissue.FAT,),
    "sex_marker": (Tissue.SEX_MARKER,),
    "decoy_marker": (Tissue.DECOY_MARKER,),
    **{t.name.lower(): (t,) for t in Tissue},
}
#: Regions defined by position, not tissue: the four squares where a decoy marker can sit,
#: whether one is drawn there or not.
_POSITIONAL_REGIONS = ("decoy_corners",)


def decoy_corners_mask(shape: tuple[int, int] = (geo.HEIGHT, geo.WIDTH)) -> np.ndarray:
    """Boolean (H, W) mask of the four 9 × 9 corner squares a decoy marker can occupy."""
    mask = np.zeros(shape, dtype=bool)
    for row, col in DECOY_CORNERS:
        mask[row:row + MARKER_SIZE, col:col + MARKER_SIZE] = True
    return mask


@dataclasses.dataclass
class SyntheticMRIs:
    """A set (or chunk) of synthetic MRIs.

    Attributes:
        images: (N, 105, 135) uint8.
        labels: (N,) int64 class indices into :data:`CLASSES`.
        is_male: (N,) bool.
        segmentation: (N, 105, 135) uint8 :class:`Tissue` codes.
        decoy_class: (N,) int64 class shown by the decoy square, −1 where there is none.
        geometry: dict of (N,) arrays per image: ``size_multiplier``, ``lv_cavity_radius``,
            ``lv_wall_thickness``, ``rv_cavity_radius``, ``rv_wall_thickness`` (pixels),
            ``body_fat_percent``, ``fat_length``, ``arv_subtype`` (0 none, 1 fatty,
            2 fatty-fibro), ``fatty_lv``, ``rv_fat_level``, ``lv_fat_level``, ``index``
            (position in the whole set).
        experiment: 1 or 2.
        options: the options used (defaults filled in).
    """

    images: np.ndarray
    labels: np.ndarray
    is_male: np.ndarray
    segmentation: np.ndarray
    decoy_class: np.ndarray
    geometry: dict[str, np.ndarray]
    experiment: int
    options: dict[str, Any]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: slice | np.ndarray) -> "SyntheticMRIs":
        """The images selected by ``index`` (a slice, integer or boolean array)."""
        return SyntheticMRIs(
            self.images[index], self.labels[index], self.is_male[index],
            self.segmentation[index], self.decoy_class[index],
            {k: v[index] for k, v in self.geometry.items()}, self.experiment, self.options)

    def region(self, name: str) -> np.ndarray:
        """Boolean (N, 105, 135) mask of a region.

        Args:
            name: ``heart`` (the four cardiac tissues), ``fat``, ``sex_marker``,
                ``decoy_marker`` (the square drawn in this image), ``decoy_corners`` (all four
                squares where a decoy can sit, drawn or not), or one tissue by name
                (``lv_cavity``, ``rv_myocardium``, ``background``, ...; case-insensitive).

        Raises:
            ValueError: for an unknown name.
        """
        if str(name).lower() == "decoy_corners":
            return np.broadcast_to(decoy_corners_mask(IMAGE_SHAPE), self.segmentation.shape)
        codes = _REGIONS.get(str(name).lower())
        if codes is None:
            raise ValueError(f"unknown region {name!r}; allowed: "
                             f"{', '.join([*_REGIONS, *_POSITIONAL_REGIONS])}")
        if codes == HEART_TISSUES:  # codes 1..4 are contiguous: two comparisons
            return (self.segmentation >= Tissue.LV_CAVITY) & (self.segmentation <= Tissue.RV_MYOCARDIUM)
        return self.segmentation == codes[0]


def validate(experiment: Any, n_per_class: Any, seed: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Check arguments and return the options with defaults filled in.

    Raises:
        ValueError: naming the bad value and what is allowed.
    """
    if experiment not in EXPERIMENTS or isinstance(experiment, bool):
        raise ValueError(f"experiment={experiment!r}; allowed: 1 or 2")
    if not isinstance(n_per_class, (int, np.integer)) or isinstance(n_per_class, bool) \
            or n_per_class < 1:
        raise ValueError(f"n_per_class={n_per_class!r}; must be an integer >= 1")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}; must be an integer >= 0")
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; allowed: {', '.join(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    if opts["variability"] not in VARIABILITIES:
        raise ValueError(f"variability={opts['variability']!r}; allowed: {', '.join(VARIABILITIES)}")
    if not isinstance(opts["shuffle"], (bool, np.bool_)):
        raise ValueError(f"shuffle={opts['shuffle']!r}; allowed: True or False")
    for name in ("difficulty", "decoy"):
        value = opts[name]
        if name == "decoy" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not 0.0 <= float(value) <= 1.0:
            allowed = "a number in [0, 1]" + (" or None" if name == "decoy" else "")
            raise ValueError(f"{name}={value!r}; allowed: {allowed}")
        opts[name] = float(value)
    if opts["decoy_set"] not in DECOY_SETS:
        raise ValueError(f"decoy_set={opts['decoy_set']!r}; allowed: {', '.join(DECOY_SETS)}")
    if opts["decoy"] is None and opts["decoy_set"] != "matched":
        raise ValueError(f"decoy_set={opts['decoy_set']!r} needs decoy=ρ (a number in [0, 1])")
    if opts["decoy"] is not None and experiment == 2:
        raise ValueError("decoy with experiment=2: the sex marker occupies the decoy's "
                         "bottom-right corner; allowed: experiment=1")
    return opts


def class_order(n_per_class: int, seed: int, shuffle: bool) -> np.ndarray:
    """Labels of the whole set in generation order (balanced; seeded shuffle or sorted)."""
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), n_per_class)
    if shuffle:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
        rng.shuffle(labels)
    return labels


def _decoy_classes(labels: np.ndarray, u: np.ndarray, opts: dict[str, Any]) -> np.ndarray:
    """Class shown by each image's decoy square (−1 for none)."""
    if opts["decoy"] is None or opts["decoy_set"] == "absent":
        return np.full(labels.shape, -1, dtype=np.int64)
    if opts["decoy_set"] == "shuffled":
        return np.minimum((u[:, geo.U_DECOY_SHUFFLED] * 4).astype(np.int64), 3)
    other = (labels + 1 + np.minimum((u[:, geo.U_DECOY_OTHER] * 3).astype(np.int64), 2)) % 4
    return np.where(u[:, geo.U_DECOY] < opts["decoy"], labels, other)


def _block(experiment: int, labels: np.ndarray, seed: int, block: int, opts: dict[str, Any],
           images: np.ndarray, seg: np.ndarray) -> SyntheticMRIs:
    """Generate RNG block ``block`` (images from block·BLOCK_SIZE on) into ``images``/``seg``.

    ``labels`` are the block's own labels; ``images`` and ``seg`` are (len(labels), H, W)
    uint8 outputs (views into a larger array are fine).
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, block)))
    n = labels.shape[0]
    # Every variate is drawn for every image whatever its class or the options, so options
    # change what an individual looks like, never which individual it is.
    uniforms = rng.random((n, geo.N_UNIFORMS))
    normals = rng.standard_normal((n, geo.N_NORMALS))
    ind = geo.sample_individuals(labels, uniforms, normals, experiment,
                                 opts["variability"], opts["difficulty"])
    render(geo.layout(ind, experiment), ind, rng, opts["difficulty"], images, seg)
    decoy = _decoy_classes(labels, uniforms, opts)
    paint_markers(images, seg, ind["is_male"] if experiment == 2 else None, decoy)
    is_male = ind.pop("is_male")
    ind["index"] = block * BLOCK_SIZE + np.arange(n, dtype=np.int64)
    return SyntheticMRIs(images, labels, is_male, seg, decoy, ind, experiment, opts)


def _fill(experiment: int, labels: np.ndarray, seed: int, opts: dict[str, Any], start: int,
          stop: int, cache: dict[int, SyntheticMRIs]) -> SyntheticMRIs:
    """Images ``start:stop`` of the set whose labels are ``labels``.

    Whole blocks are drawn straight into the output; a block cut by the range is drawn
    once into ``cache`` (which keeps only the latest such block) and copied from there.
    """
    n = stop - start
    images = np.empty((n, *IMAGE_SHAPE), dtype=np.uint8)
    seg = np.empty((n, *IMAGE_SHAPE), dtype=np.uint8)
    parts = []
    for block in range(start // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE + 1):
        lo, hi = block * BLOCK_SIZE, min((block + 1) * BLOCK_SIZE, labels.shape[0])
        a, b = max(lo, start), min(hi, stop)
        if (a, b) == (lo, hi):
            parts.append(_block(experiment, labels[lo:hi], seed, block, opts,
                                images[a - start:b - start], seg[a - start:b - start]))
            continue
        if block not in cache:
            cache.clear()
            shape = (hi - lo, *IMAGE_SHAPE)
            cache[block] = _block(experiment, labels[lo:hi], seed, block, opts,
                                  np.empty(shape, np.uint8), np.empty(shape, np.uint8))
        full = cache[block]
        images[a - start:b - start] = full.images[a - lo:b - lo]
        seg[a - start:b - start] = full.segmentation[a - lo:b - lo]
        parts.append(full.subset(slice(a - lo, b - lo)))
    return SyntheticMRIs(
        images=images, segmentation=seg, experiment=experiment, options=opts,
        **{k: np.concatenate([getattr(p, k) for p in parts])
           for k in ("labels", "is_male", "decoy_class")},
        geometry={k: np.concatenate([p.geometry[k] for p in parts]) for k in parts[0].geometry})


def iter_batches(experiment: int, n_per_class: int, seed: int, chunk_size: int,
                 **options: Any) -> Iterator[SyntheticMRIs]:
    """Yield the set of :func:`generate` in consecutive chunks (the last may be smaller).

    Only one RNG block (256 images) plus one chunk is in memory at a time, so a
    100,000-image test set streams. Concatenating the chunks gives exactly the bytes of
    ``generate(experiment, n_per_class, seed, **options)``, whatever ``chunk_size``.

    Args:
        experiment: 1 or 2.
        n_per_class: images per class (the set has 4 × n_per_class images).
        seed: non-negative integer.
        chunk_size: images per yielded chunk (>= 1).
        **options: see the module docstring.

    Yields:
        :class:`SyntheticMRIs` chunks; ``geometry["index"]`` gives each image's position.

    Raises:
        ValueError: for bad arguments or options.
    """
    opts = validate(experiment, n_per_class, seed, options)
    if not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}; must be an integer >= 1")
    labels = class_order(int(n_per_class), int(seed), bool(opts["shuffle"]))
    cache: dict[int, SyntheticMRIs] = {}
    for start in range(0, labels.shape[0], int(chunk_size)):
        stop = min(start + int(chunk_size), labels.shape[0])
        yield _fill(experiment, labels, int(seed), opts, start, stop, cache)


def generate(experiment: int, n_per_class: int, seed: int, **options: Any) -> SyntheticMRIs:
    """Generate a balanced set of 4 × ``n_per_class`` synthetic MRIs.

    Args:
        experiment: 1 (sizes depend on sex) or 2 (sex-independent sizes, fat offset 18, a
            9 × 9 marker in the bottom-right corner of male images).
        n_per_class: images per class (>= 1).
        seed: non-negative integer; the same seed and options give identical bytes.
        **options: ``variability``, ``shuffle``, ``difficulty``, ``decoy``, ``decoy_set``
            (see the module docstring).

    Returns:
        A :class:`SyntheticMRIs`.

    Raises:
        ValueError: for an unknown experiment, ``n_per_class < 1``, a bad seed, an unknown
            option or a bad option value (the message names the value and what is allowed).
    """
    validate(experiment, n_per_class, seed, options)
    return next(iter_batches(experiment, n_per_class, seed, 4 * int(n_per_class), **options))


def tissue_fractions(data: SyntheticMRIs) -> dict[str, np.ndarray]:
    """Per-image fraction of the image's pixels in each region.

    Args:
        data: a set or chunk.

    Returns:
        Dict of (N,) float64 arrays: ``heart``, ``fat``, ``sex_marker``, ``decoy_marker`` and
        one per :class:`Tissue` (lower-case name).
    """
    seg = data.segmentation.reshape(len(data), -1)
    counts = {t.name.lower(): np.count_nonzero(seg == t, axis=1) for t in Tissue}
    out = {name: c / seg.shape[1] for name, c in counts.items()}
    out["heart"] = sum(counts[t.name.lower()] for t in HEART_TISSUES) / seg.shape[1]
    return out


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Network input: grey images repeated to 3 channels and scaled to x / 127.5 − 1.

    Args:
        images: (N, H, W) uint8.

    Returns:
        float32 (N, H, W, 3) in [−1, 1].
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images of shape {images.shape} and dtype {images.dtype}; "
                         "allowed: (N, H, W) uint8")
    scaled = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.repeat(scaled[..., None], 3, axis=-1)


__all__ = ["BLOCK_SIZE", "CLASSES", "DECOY_SETS", "DEFAULT_OPTIONS", "EXPERIMENTS", "HEART_TISSUES",
           "IMAGE_SHAPE", "P_MALE", "THESIS_FACTS", "VARIABILITIES", "SyntheticMRIs", "Tissue",
           "class_order", "decoy_corners_mask", "generate", "iter_batches", "tissue_fractions", "to_model_input",
           "validate"]
