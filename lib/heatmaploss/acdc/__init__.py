"""The Automated Cardiac Diagnosis Challenge (ACDC) data: reader, fixture, preprocessing,
measurements.

    from heatmaploss import acdc
    patients = acdc.load_patients("/data/ACDC/database", split="training")

* :mod:`.reader` — the organisers' folder layout, ``Info.cfg`` and NIfTI files, checked;
* :mod:`.fixture` — an ACDC-format synthetic dataset written by the project (tests, CI);
* :mod:`.preprocess` — z-score, resampling, centre crop/pad and joint augmentation;
* :mod:`.measures` — clinical measurements on masks (volumes, ejection fractions, myocardial
  mass, wall thickness, body surface area).

Format facts: ``docs/acdc.md``. No TensorFlow.
"""

from .reader import (GROUPS, LABELS, PHASES, SPLITS, STRUCTURES, AcdcFormatError, AcdcPatient,
                     is_validation, load_patient, load_patients, overview, parse_info_cfg,
                     split_dir)

__all__ = ["GROUPS", "LABELS", "PHASES", "SPLITS", "STRUCTURES", "AcdcFormatError",
           "AcdcPatient", "is_validation", "load_patient", "load_patients", "overview",
           "parse_info_cfg", "split_dir"]
