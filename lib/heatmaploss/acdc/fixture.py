"""An ACDC-format synthetic dataset, so that code written for the real data runs (and is tested)
without it.

    root = write_fixture("/tmp/acdc", preset="small", seed=0)   # then acdc.load_patients(root)

What it satisfies (``docs/acdc.md`` § The fixture): the real tree and file names,
byte-exact Info.cfg, ``_gt`` masks with the frame's shape and affine, ``_4d[..., NN-1]``
identical to frame NN, int16 images (never constant), uint8 labels in {0, 1, 2, 3}, affine
diag(sx, sy, sz, 1) with qform/sform code 1 and mm units, in-plane spacings 1.3671875 /
1.40625 / 1.5625 mm, slices of 10 mm (some 5 mm with twice the slices), fields of view fixed in
mm (non-square too), and group-dependent anatomy: LV cavity disc, myocardium ring and RV
crescent per slice, tapering to the apex, smaller cavities at ES. Files depend only on
(preset, seed, patient id): gzip streams are written with mtime 0, so reruns are
byte-identical.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..project import files
from .reader import GROUPS, INFO_KEYS

#: Training ids come in blocks of 20 per group, in this order (as in the real release).
TRAINING_BLOCKS = ("DCM", "HCM", "MINF", "NOR", "RV")
IN_PLANE_SPACINGS = (1.3671875, 1.40625, 1.5625)
#: Field of view (x, y) in mm; the pixel count follows from the spacing.
FIELDS_OF_VIEW_MM = ((150.0, 150.0), (160.0, 140.0), (140.0, 165.0), (170.0, 150.0))
SLICE_SPACING_MM = 10.0
THIN_SLICE_SPACING_MM = 5.0
STACK_MM = 90.0  # base-to-beyond-apex extent covered by the slices
_MARKER = ".heatmaploss_fixture.json"
_CITATION = ("Synthetic ACDC-format fixture written by heatmaploss.acdc.fixture. It is NOT the "
             "ACDC data; results on it say nothing about real hearts.\n")


@dataclass(frozen=True)
class FixturePreset:
    """Size of a fixture.

    Attributes:
        training_offsets: 1-based positions inside each block of 20 training ids that exist.
        n_testing: testing patients (ids from 101; groups balanced).
        frames: inclusive range of NbFrame.
    """

    training_offsets: tuple[int, ...]
    n_testing: int
    frames: tuple[int, int]


PRESETS = {
    # Offset 5 gives one validation patient (id % 5 == 0) per group.
    "small": FixturePreset(training_offsets=(1, 5), n_testing=5, frames=(8, 10)),
    "full": FixturePreset(training_offsets=tuple(range(1, 21)), n_testing=50, frames=(12, 15)),
}

# Per group, at end-diastole, in mm: LV cavity radius, LV wall, LV ejection fraction, RV cavity
# radius, RV ejection fraction, septal thickening (fraction), thinned sector (fraction of wall
# kept; 1 = none).
_ANATOMY = {
    "NOR": dict(lv_r=24.0, lv_w=8.0, lv_ef=0.62, rv_r=22.0, rv_ef=0.55, septal=0.0, sector=1.0),
    "DCM": dict(lv_r=34.0, lv_w=5.5, lv_ef=0.20, rv_r=24.0, rv_ef=0.40, septal=0.0, sector=1.0),
    "HCM": dict(lv_r=16.0, lv_w=15.0, lv_ef=0.72, rv_r=20.0, rv_ef=0.60, septal=0.3, sector=1.0),
    "MINF": dict(lv_r=30.0, lv_w=8.0, lv_ef=0.35, rv_r=22.0, rv_ef=0.50, septal=0.0, sector=0.4),
    "RV": dict(lv_r=23.0, lv_w=8.0, lv_ef=0.58, rv_r=34.0, rv_ef=0.25, septal=0.0, sector=1.0),
}


def patient_ids(preset: str) -> dict[str, list[int]]:
    """Ids per split of ``preset``: ``{"training": [...], "testing": [...]}``."""
    p = _preset(preset)
    training = [20 * block + off for block in range(5) for off in p.training_offsets]
    return {"training": training, "testing": list(range(101, 101 + p.n_testing))}


def _preset(name: str) -> FixturePreset:
    if name not in PRESETS:
        raise ValueError(f"fixture preset {name!r}: allowed {', '.join(PRESETS)}")
    return PRESETS[name]


def _testing_groups(n: int, seed: int) -> list[str]:
    groups = [GROUPS[i % len(GROUPS)] for i in range(n)]
    order = np.random.default_rng([seed, 7919]).permutation(n)
    return [groups[i] for i in order]


def _info_cfg(ed: int, es: int, group: str | None, height: float, nb_frame: int,
              weight: float) -> str:
    values = {"ED": ed, "ES": es, "Group": group, "Height": f"{height:.1f}",
              "NbFrame": nb_frame, "Weight": f"{weight:.1f}"}
    return "".join(f"{k}: {values[k]}\n" for k in INFO_KEYS if values[k] is not None)


def _write_nifti(path: Path, data: np.ndarray, zooms: tuple[float, ...]) -> None:
    import nibabel as nib

    affine = np.diag([*zooms[:3], 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    # gzip by hand with mtime=0: nibabel's writer stamps the current time into the stream.
    payload = gzip.compress(img.to_bytes(), compresslevel=1, mtime=0)
    with files.atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def _contraction(nb_frame: int, ed: int, es: int) -> np.ndarray:
    """0 at ED, 1 at ES, smooth (cosine) in between, over the cyclic cine."""
    t = (np.arange(nb_frame) - (ed - 1)) % nb_frame
    systole = (es - ed) % nb_frame
    return np.where(t <= systole,
                    0.5 * (1 - np.cos(np.pi * t / max(systole, 1))),
                    0.5 * (1 + np.cos(np.pi * (t - systole) / max(nb_frame - systole, 1))))


class _Heart:
    """Geometry of one synthetic patient; ``frame(c)`` rasterises it at contraction c."""

    def __init__(self, group: str, shape: tuple[int, int, int], spacing: tuple[float, ...],
                 size: float, rng: np.random.Generator):
        a = dict(_ANATOMY[group])
        jitter = size * rng.normal(1.0, 0.05, size=3)  # body size and individual variation
        self.lv_r, self.lv_w, self.rv_r = a["lv_r"] * jitter[0], a["lv_w"] * jitter[1], a["rv_r"] * jitter[2]
        self.lv_ef = float(np.clip(a["lv_ef"] + rng.normal(0, 0.03), 0.08, 0.85))
        self.rv_ef = float(np.clip(a["rv_ef"] + rng.normal(0, 0.03), 0.08, 0.85))
        self.septal, self.sector = a["septal"], a["sector"]
        self.sector_angle = rng.uniform(0, 2 * np.pi)
        nx, ny, nz = shape
        sx, sy, sz = spacing
        self.x = ((np.arange(nx) + 0.5) * sx)[:, None, None]
        self.y = ((np.arange(ny) + 0.5) * sy)[None, :, None]
        z = (np.arange(nz) + 0.5) * sz
        # The first slice lies above the base and the stack ends past the apex: those slices
        # have no labels, as in the real data.
        base = sz + rng.uniform(-0.2, 0.2) * min(sz, 5.0)
        length = rng.uniform(0.72, 0.8) * STACK_MM * size
        u = (z - base) / length
        self.taper = np.where((u >= 0) & (u <= 1), np.sqrt(np.clip(1 - u ** 2, 0, 1)), 0.0)
        v = (z - base) / (0.78 * length)
        self.rv_taper = np.where((v >= 0) & (v <= 1), np.sqrt(np.clip(1 - v ** 2, 0, 1)), 0.0)
        angle = np.pi + rng.uniform(-0.35, 0.35)  # direction LV -> RV
        self.direction = np.array([np.cos(angle), np.sin(angle)])
        outer = self.lv_r + self.lv_w
        fov = np.array([nx * sx, ny * sy])
        # Centre the LV+RV bounding box: shift the LV away from the RV side.
        shift = 0.5 * (0.25 * self.rv_r + 0.2 * outer) * (-self.direction)
        self.lv_c = fov / 2 + shift + rng.normal(0, 2.0, size=2)
        self.rv_c = self.lv_c + self.direction * (outer + 0.25 * self.rv_r)
        self.rv_angle = angle

    def labels(self, c: float) -> np.ndarray:
        """Rasterise the heart at contraction ``c`` (0 = ED, 1 = ES).

        Returns:
            ``(labels, rv_wall)``: uint8 label volume and the (unlabelled) RV wall mask.
        """
        r = self.lv_r * np.sqrt(1 - self.lv_ef * c)
        mass = (self.lv_r + self.lv_w) ** 2 - self.lv_r ** 2  # area conserved: wall thickens
        w = np.sqrt(r ** 2 + mass) - r
        rv = self.rv_r * np.sqrt(1 - self.rv_ef * c)
        dx, dy = self.x - self.lv_c[0], self.y - self.lv_c[1]
        d_lv = np.sqrt(dx ** 2 + dy ** 2)
        theta = np.arctan2(dy, dx)
        wall = w * (1 + self.septal * np.cos(theta - self.rv_angle)) * (0.6 + 0.4 * self.taper)
        if self.sector < 1:
            in_sector = np.cos(theta - self.sector_angle) > np.cos(np.radians(50))
            wall = np.where(in_sector, wall * self.sector, wall)
        cav = r * self.taper
        has_lv = self.taper > 0
        lv_cavity = (d_lv < cav) & has_lv
        epi = cav + wall
        myo = (d_lv < epi) & ~lv_cavity & has_lv
        d_rv = np.sqrt((self.x - self.rv_c[0]) ** 2 + (self.y - self.rv_c[1]) ** 2)
        rv_cav = (d_rv < rv * self.rv_taper) & ~(d_lv < epi + 0.5) & (self.rv_taper > 0)
        rv_wall = (d_rv < rv * self.rv_taper + 3.0) & ~rv_cav & ~myo & ~lv_cavity & (self.rv_taper > 0)
        out = np.zeros(np.broadcast_shapes(d_lv.shape, cav.shape), np.uint8)
        out[rv_cav] = 1
        out[myo] = 2
        out[lv_cavity] = 3
        return out, rv_wall


def _patient(folder: Path, number: int, group: str, write_group: bool, write_labels: bool,
             preset: FixturePreset, seed: int) -> None:
    rng = np.random.default_rng([seed, number])
    sx = IN_PLANE_SPACINGS[number % 3]
    sz = THIN_SLICE_SPACING_MM if number % 7 == 3 else SLICE_SPACING_MM
    fov = FIELDS_OF_VIEW_MM[number % len(FIELDS_OF_VIEW_MM)]
    shape = (int(round(fov[0] / sx)), int(round(fov[1] / sx)), int(round(STACK_MM / sz)))
    spacing = (sx, sx, sz)
    height = float(np.clip(rng.normal(172, 9), 145, 200))
    weight = float(np.clip(rng.normal(76 + (6 if group == "DCM" else 0), 13), 45, 130))
    nb_frame = int(rng.integers(preset.frames[0], preset.frames[1] + 1))
    ed = 1
    es = int(np.clip(round(0.4 * nb_frame) + rng.integers(-1, 2), 2, nb_frame))
    heart = _Heart(group, shape, spacing, size=(height / 172) ** 0.5, rng=rng)

    # Static surroundings: body ellipse, two dark lungs, a smooth bias field, a gain.
    from scipy.ndimage import gaussian_filter

    x, y = heart.x[..., 0], heart.y[..., 0]
    cx, cy = shape[0] * sx / 2, shape[1] * sx / 2
    body = ((x - cx) / (0.47 * shape[0] * sx)) ** 2 + ((y - cy) / (0.45 * shape[1] * sx)) ** 2 < 1
    lungs = np.zeros_like(body)
    for side in (-1, 1):
        lx = heart.lv_c[0] + side * 0.4 * shape[0] * sx
        lungs |= ((x - lx) / 18.0) ** 2 + ((y - cy) / 40.0) ** 2 < 1
    tissue = np.where(body, 130.0, 8.0) * np.where(lungs & body, 0.25, 1.0)
    bias = 1 + 0.15 * ((x - cx) / (shape[0] * sx) + (y - cy) / (shape[1] * sx))
    gain = rng.uniform(0.7, 1.5)
    static = (tissue * bias)[..., None]

    contraction = _contraction(nb_frame, ed, es)
    frames = np.empty(shape + (nb_frame,), np.int16)
    labels = {}
    for t in range(nb_frame):
        lab, rv_wall = heart.labels(float(contraction[t]))
        img = np.broadcast_to(static, shape).copy()
        img[rv_wall | (lab == 2)] = 75.0
        img[(lab == 1) | (lab == 3)] = 340.0
        img = gaussian_filter(img, sigma=(0.8, 0.8, 0.0)) * gain
        img += rng.normal(0, 10.0, size=shape)
        frames[..., t] = np.clip(np.rint(img), 0, 32767).astype(np.int16)
        if t + 1 in (ed, es):
            labels[t + 1] = lab

    folder.mkdir(parents=True, exist_ok=True)
    pid = folder.name
    files.write_text(folder / "Info.cfg", _info_cfg(ed, es, group if write_group else None,
                                                 height, nb_frame, weight))
    files.write_text(folder / "MANDATORY_CITATION.md", _CITATION)
    _write_nifti(folder / f"{pid}_4d.nii.gz", frames, spacing + (1.0,))
    for number_, lab in labels.items():
        _write_nifti(folder / f"{pid}_frame{number_:02d}.nii.gz",
                     np.ascontiguousarray(frames[..., number_ - 1]), spacing)
        if write_labels:
            _write_nifti(folder / f"{pid}_frame{number_:02d}_gt.nii.gz", lab, spacing)


def _same_config(marker: Path, config: dict) -> bool:
    try:
        return json.loads(marker.read_text()) == json.loads(json.dumps(config))
    except (OSError, ValueError):
        return False


def write_fixture(root: str | Path, preset: str = "small", seed: int = 0,
                  variant: str = "current", progress: bool = False) -> Path:
    """Write an ACDC-format synthetic dataset under ``root`` (skipped if already complete).

    A complete fixture is reused only if every file still matches the SHA-256 recorded when it
    was written (``.checksums.json``); a damaged file is moved aside with a warning and its
    patient is written again.

    Args:
        root: destination; gets ``training/``, ``testing/`` and ``MANDATORY_CITATION.md``.
        preset: ``small`` (2 patients per group + 5 test patients, for tests) or ``full``
            (100 + 50, at a reduced field of view of 140–170 mm).
        seed: base seed; each patient's files depend only on (preset, seed, patient id).
        variant: ``current`` (testing has ``Group`` and ``_gt``) or ``2017`` (the first
            release: testing without ``Group`` lines and without masks).
        progress: show a tqdm bar.

    Returns:
        ``root`` as a Path.
    """
    from tqdm.auto import tqdm

    p = _preset(preset)
    if variant not in ("current", "2017"):
        raise ValueError(f"variant {variant!r}: allowed 'current' or '2017'")
    root = Path(root)
    config = {"preset": preset, "seed": seed, "variant": variant, **asdict(p)}
    marker = root / _MARKER
    ids = patient_ids(preset)
    testing_groups = _testing_groups(len(ids["testing"]), seed)
    jobs = [("training", n, TRAINING_BLOCKS[(n - 1) // 20], True, True) for n in ids["training"]]
    jobs += [("testing", n, g, variant == "current", variant == "current")
             for n, g in zip(ids["testing"], testing_groups)]
    if _same_config(marker, config):
        # A cached fixture is trusted only when every file matches its recorded checksum; a
        # damaged one is moved aside and its patient written again.
        damaged = files.check_manifest(root)
        if damaged == []:
            return root
        if damaged is not None:
            redo = {path.relative_to(root).parts[:2] for path in damaged}
            jobs = [job for job in jobs if (job[0], f"patient{job[1]:03d}") in redo]
    files.write_text(root / "MANDATORY_CITATION.md", _CITATION)
    for split, number, group, write_group, write_labels in tqdm(
            jobs, desc="ACDC fixture", unit="patient", disable=not progress):
        _patient(root / split / f"patient{number:03d}", number, group, write_group,
                 write_labels, p, seed)
    files.write_text(root / "training" / "MANDATORY_CITATION.md", _CITATION)  # a stray plain file
    written = [path for split in ("training", "testing") for path in (root / split).rglob("*")
               if path.is_file() and ".damaged-" not in path.name]
    files.write_manifest(root, [root / "MANDATORY_CITATION.md", *written])
    files.write_json(marker, config)
    return root


__all__ = ["FIELDS_OF_VIEW_MM", "IN_PLANE_SPACINGS", "PRESETS", "FixturePreset", "patient_ids",
           "write_fixture"]
