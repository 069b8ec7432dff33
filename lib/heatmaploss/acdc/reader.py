"""Reader for the Automated Cardiac Diagnosis Challenge (ACDC) data as the organisers ship it.

The data need a registration on the organisers' site, so the project reads a folder the user
supplies (``<root>/training/patient001 …``, ``<root>/testing/patient101 …``) and runs its
tests on an ACDC-format fixture it writes itself (:mod:`heatmaploss.acdc.fixture`).

    patients = load_patients("/data/ACDC/database", split="training")
    p = patients[0]
    p.patient_id, p.group, p.ed, p.es, p.spacing         # 'patient001', 'DCM', 1, 12, (1.56, 1.56, 10.0)
    image, label = p.image("ED"), p.label("ED")           # numpy, nibabel (X, Y, Z) order

Headers are read when the patients are loaded (spacing, shapes and affines are checked
then); voxel data only when ``image``/``label`` is called. Every problem is raised as
:class:`AcdcFormatError` naming the patient and the file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")
#: Label values in the ``_gt`` masks.
LABELS = {0: "background", 1: "RV cavity", 2: "LV myocardium", 3: "LV cavity"}
STRUCTURES = ("RV", "MYO", "LV")  # foreground labels 1, 2, 3 in this order
SPLITS = ("training", "testing")
PHASES = ("ED", "ES")
#: Info.cfg keys in file order; Group is absent in the 2017 release's testing set.
INFO_KEYS = ("ED", "ES", "Group", "Height", "NbFrame", "Weight")
_INT_KEYS = ("ED", "ES", "NbFrame")
_FLOAT_KEYS = ("Height", "Weight")
_PATIENT_DIR = re.compile(r"^patient(\d{3})$")


class AcdcFormatError(ValueError):
    """A file of an ACDC folder is missing, malformed or inconsistent (message names it)."""


def parse_info_cfg(text: str, source: str = "Info.cfg") -> dict[str, int | float | str | None]:
    """Parse the text of an ``Info.cfg`` file.

    The format is six ``key: value`` lines (``ED``, ``ES``, ``Group``, ``Height``, ``NbFrame``,
    ``Weight``); ``Group`` may be missing (2017 test set). configparser would lower-case the
    keys, so the lines are parsed here.

    Args:
        text: file contents.
        source: name used in error messages (patient and path).

    Returns:
        Mapping with int ``ED``/``ES``/``NbFrame``, float ``Height``/``Weight`` and ``Group``
        (str, or None when absent).

    Raises:
        AcdcFormatError: on a line without ``:``, an unknown or repeated key, a missing key, a
            value of the wrong type, an unknown group, or ED/ES outside 1..NbFrame.
    """
    values: dict[str, int | float | str | None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            raise AcdcFormatError(f"{source}: line {number} {raw!r} is not 'key: value'")
        if key not in INFO_KEYS:
            raise AcdcFormatError(
                f"{source}: line {number} has unknown key {key!r}; allowed: {', '.join(INFO_KEYS)}")
        if key in values:
            raise AcdcFormatError(f"{source}: key {key!r} appears twice")
        try:
            if key in _INT_KEYS:
                values[key] = int(value)
            elif key in _FLOAT_KEYS:
                values[key] = float(value)
            else:
                values[key] = value
        except ValueError:
            kind = "an integer" if key in _INT_KEYS else "a number"
            raise AcdcFormatError(f"{source}: {key}={value!r} is not {kind}") from None
    missing = [k for k in INFO_KEYS if k != "Group" and k not in values]
    if missing:
        raise AcdcFormatError(f"{source}: missing {', '.join(missing)}")
    values.setdefault("Group", None)
    if values["Group"] is not None and values["Group"] not in GROUPS:
        raise AcdcFormatError(
            f"{source}: Group={values['Group']!r}; allowed: {', '.join(GROUPS)}")
    for key in ("ED", "ES"):
        if not 1 <= values[key] <= values["NbFrame"]:  # type: ignore[operator]
            raise AcdcFormatError(
                f"{source}: {key}={values[key]} outside 1..NbFrame={values['NbFrame']}")
    return values


def _load_header(path: Path, patient: str):
    import nibabel as nib

    if not path.is_file():
        raise AcdcFormatError(f"{patient}: missing file {path}")
    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises ImageFileError, gzip/EOF errors, OSError …
        raise AcdcFormatError(f"{patient}: cannot read NIfTI {path}: {exc}") from exc


def _read_array(path: Path, patient: str) -> np.ndarray:
    img = _load_header(path, patient)
    try:
        return np.asanyarray(img.dataobj)
    except Exception as exc:
        raise AcdcFormatError(f"{patient}: cannot read voxel data of {path}: {exc}") from exc


@dataclass(frozen=True)
class AcdcPatient:
    """One patient folder: Info.cfg values and lazy access to the ED/ES volumes.

    Attributes:
        patient_id: folder name, e.g. ``patient001``.
        number: the numeric id (1 … 150); the usual validation split is ``number % 5 == 0``.
        split: ``training`` or ``testing``.
        group: diagnosis (NOR, MINF, DCM, HCM, RV) or None when Info.cfg has no Group line.
        ed, es: 1-based end-diastole / end-systole frame numbers.
        height, weight: cm and kg from Info.cfg.
        nb_frame: number of frames of the cine (4-D) file.
        spacing: voxel size (x, y, z) in mm from the ED frame's header.
        shape: (X, Y, Z) of the ED frame.
        folder: the patient folder.
        has_labels: whether both ``_gt`` masks exist.
    """

    patient_id: str
    number: int
    split: str
    group: str | None
    ed: int
    es: int
    height: float
    weight: float
    nb_frame: int
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    folder: Path = field(repr=False)
    has_labels: bool = True

    @property
    def is_normal(self) -> bool | None:
        """True for NOR, False for the four diseases, None without a group."""
        return None if self.group is None else self.group == "NOR"

    def frame_number(self, phase: str) -> int:
        """The 1-based frame number of ``phase`` ("ED" or "ES")."""
        if phase not in PHASES:
            raise ValueError(f"phase {phase!r}: allowed 'ED' or 'ES'")
        return self.ed if phase == "ED" else self.es

    def image_path(self, phase: str) -> Path:
        """Path of the ``phase`` frame, e.g. ``patient001_frame01.nii.gz``."""
        return self.folder / f"{self.patient_id}_frame{self.frame_number(phase):02d}.nii.gz"

    def label_path(self, phase: str) -> Path:
        """Path of the ``phase`` mask, e.g. ``patient001_frame01_gt.nii.gz``."""
        return self.folder / f"{self.patient_id}_frame{self.frame_number(phase):02d}_gt.nii.gz"

    @property
    def cine_path(self) -> Path:
        """Path of the 4-D cine file ``patientNNN_4d.nii.gz``."""
        return self.folder / f"{self.patient_id}_4d.nii.gz"

    def image(self, phase: str) -> np.ndarray:
        """Read the ``phase`` frame: int16 (as stored) array in (X, Y, Z) order."""
        return _read_array(self.image_path(phase), self.patient_id)

    def label(self, phase: str) -> np.ndarray:
        """Read the ``phase`` mask: uint8 array in (X, Y, Z) order, values in {0, 1, 2, 3}.

        Raises:
            AcdcFormatError: when the mask is missing or holds other values.
        """
        path = self.label_path(phase)
        data = _read_array(path, self.patient_id)
        if data.size and (not np.issubdtype(data.dtype, np.number) or data.min() < 0
                          or data.max() > 3 or not np.all(np.equal(np.mod(data, 1), 0))):
            bad = sorted(set(np.unique(data).tolist()) - set(LABELS))[:5]
            raise AcdcFormatError(
                f"{self.patient_id}: {path} holds label values {bad} outside {{0, 1, 2, 3}}")
        return data.astype(np.uint8, copy=False)

    def cine(self) -> np.ndarray:
        """Read the 4-D cine (X, Y, Z, NbFrame); frame NN is index NN − 1."""
        return _read_array(self.cine_path, self.patient_id)


def _check_pair(patient: str, image_path: Path, image, label_path: Path, label) -> None:
    if image.shape != label.shape:
        raise AcdcFormatError(f"{patient}: {label_path} has shape {label.shape} but "
                              f"{image_path} has {image.shape}")
    if not np.allclose(image.affine, label.affine, atol=1e-4):
        raise AcdcFormatError(f"{patient}: affine of {label_path} differs from {image_path}")


def load_patient(folder: str | Path, split: str = "training",
                 require_labels: bool | None = None) -> AcdcPatient:
    """Read one patient folder's Info.cfg and the headers of its ED/ES frames and masks.

    Args:
        folder: ``…/patientNNN``.
        split: ``training`` or ``testing`` (only recorded).
        require_labels: whether missing ``_gt`` masks are an error; default True for the
            training split and False for testing (the 2017 release shipped none there).

    Returns:
        The patient record.

    Raises:
        AcdcFormatError: naming the patient and file, for a missing or malformed Info.cfg, a
            missing or unreadable frame or mask, or a mask whose shape or affine differs from
            its frame.
    """
    folder = Path(folder)
    match = _PATIENT_DIR.match(folder.name)
    if not match:
        raise AcdcFormatError(f"{folder}: patient folders are named patientNNN")
    pid = folder.name
    if require_labels is None:
        require_labels = split == "training"
    info_path = folder / "Info.cfg"
    if not info_path.is_file():
        raise AcdcFormatError(f"{pid}: missing file {info_path}")
    info = parse_info_cfg(info_path.read_text(encoding="utf-8", errors="replace"),
                          source=f"{pid}: {info_path}")
    ed_img = es_img = None
    has_labels = True
    for phase, number in (("ED", info["ED"]), ("ES", info["ES"])):
        image_path = folder / f"{pid}_frame{number:02d}.nii.gz"
        label_path = folder / f"{pid}_frame{number:02d}_gt.nii.gz"
        img = _load_header(image_path, pid)
        if len(img.shape) != 3:
            raise AcdcFormatError(f"{pid}: {image_path} has shape {img.shape}; expected 3-D")
        if label_path.is_file():
            _check_pair(pid, image_path, img, label_path, _load_header(label_path, pid))
        elif require_labels:
            raise AcdcFormatError(f"{pid}: missing file {label_path}")
        else:
            has_labels = False
        if phase == "ED":
            ed_img = img
        else:
            es_img = img
    if ed_img.shape != es_img.shape:
        raise AcdcFormatError(f"{pid}: ED frame shape {ed_img.shape} differs from ES frame "
                              f"shape {es_img.shape}")
    spacing = tuple(float(z) for z in ed_img.header.get_zooms()[:3])
    return AcdcPatient(
        patient_id=pid, number=int(match.group(1)), split=split, group=info["Group"],
        ed=info["ED"], es=info["ES"], height=info["Height"], weight=info["Weight"],
        nb_frame=info["NbFrame"], spacing=spacing, shape=tuple(int(s) for s in ed_img.shape),
        folder=folder, has_labels=has_labels,
    )


def split_dir(root: str | Path, split: str) -> Path:
    """The folder of ``split`` under ``root`` (also accepts the folder above ``database/``).

    Raises:
        ValueError: for an unknown split; AcdcFormatError when the folder does not exist.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: allowed {', '.join(SPLITS)}")
    root = Path(root)
    for candidate in (root / split, root / "database" / split):
        if candidate.is_dir():
            return candidate
    raise AcdcFormatError(
        f"ACDC root {root}: no {split}/ folder (expected {root / split}); point acdc_root at "
        "the folder that holds training/ and testing/")


def load_patients(root: str | Path, split: str = "training",
                  require_labels: bool | None = None) -> list[AcdcPatient]:
    """Load every patient of one split, sorted by id; stray plain files are skipped.

    Args:
        root: the ACDC folder holding ``training/`` and ``testing/`` (often ``database``).
        split: ``training`` or ``testing``.
        require_labels: see :func:`load_patient` (default: required for training only).

    Returns:
        Patient records in id order.

    Raises:
        AcdcFormatError: for the first malformed patient (naming it and the file), or when
            the split holds no patient folders.
    """
    base = split_dir(root, split)
    patients = []
    for entry in sorted(base.iterdir()):
        if not entry.is_dir() or not _PATIENT_DIR.match(entry.name):
            logger.debug("skipping %s: not a patient folder", entry)
            continue
        patients.append(load_patient(entry, split=split, require_labels=require_labels))
    if not patients:
        raise AcdcFormatError(f"{base}: no patientNNN folders")
    return patients


def is_validation(patient: AcdcPatient) -> bool:
    """Baumgartner et al.'s validation split of the training set: id divisible by 5."""
    return patient.number % 5 == 0


def overview(patients: list[AcdcPatient]):
    """One row per patient (id, split, group, frames, spacing, shape, height, weight).

    Returns:
        A pandas DataFrame.
    """
    import pandas as pd

    return pd.DataFrame([{
        "patient_id": p.patient_id, "number": p.number, "split": p.split, "group": p.group,
        "ed": p.ed, "es": p.es, "nb_frame": p.nb_frame, "height": p.height,
        "weight": p.weight, "spacing_x": p.spacing[0], "spacing_y": p.spacing[1],
        "spacing_z": p.spacing[2], "size_x": p.shape[0], "size_y": p.shape[1],
        "slices": p.shape[2], "has_labels": p.has_labels,
    } for p in patients])


__all__ = ["GROUPS", "LABELS", "PHASES", "SPLITS", "STRUCTURES", "AcdcFormatError",
           "AcdcPatient", "is_validation", "load_patient", "load_patients", "overview",
           "parse_info_cfg", "split_dir"]
