"""Chapter 1, the analysis: the synthetic data checked against the thesis's published facts.

    frame = analysis.calibration_frame(sizes, seeds)   # one row per image, both experiments
    table = analysis.fraction_table(frame)             # ours next to the thesis's, per class

TensorFlow-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import synthetic
from ...project import files
from ...project.profiles import DataSizes
from ...report import verdicts
from ...report.rows import ReportRow
from ...synthetic import CLASSES, THESIS_FACTS

GEOMETRY_COLUMNS = ("size_multiplier", "lv_cavity_radius", "lv_wall_thickness",
                    "rv_cavity_radius", "rv_wall_thickness", "body_fat_percent", "fat_length",
                    "arv_subtype", "fatty_lv")


def experiment_seeds(seed: int) -> dict[int, int]:
    """The generator seed of each experiment's sets: ``seed + experiment``."""
    return {1: seed + 1, 2: seed + 2}


def per_image_frame(experiment: int, n_per_class: int, seed: int, chunk_size: int = 1000,
                    **options: Any) -> pd.DataFrame:
    """Stream a set and keep one row per image (no pixels), for tables and distributions.

    Args:
        experiment, n_per_class, seed, **options: as :func:`heatmaploss.synthetic.generate`.
        chunk_size: images generated at a time (bounds memory).

    Returns:
        DataFrame with ``experiment``, ``label``, ``class``, ``is_male``, the region fractions
        ``heart``, ``fat``, ``sex_marker``, ``decoy_marker``, ``decoy_class`` and
        :data:`GEOMETRY_COLUMNS`.
    """
    parts = []
    for chunk in synthetic.iter_batches(experiment, n_per_class, seed, chunk_size, **options):
        fractions = synthetic.tissue_fractions(chunk)
        part = {"experiment": experiment, "label": chunk.labels, "is_male": chunk.is_male,
                "decoy_class": chunk.decoy_class}
        part.update({k: fractions[k] for k in ("heart", "fat", "sex_marker", "decoy_marker")})
        part.update({k: chunk.geometry[k] for k in GEOMETRY_COLUMNS})
        parts.append(pd.DataFrame(part))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(2, "class", pd.Categorical.from_codes(frame["label"], categories=list(CLASSES)))
    return frame


def calibration_frame(sizes: DataSizes, seeds: dict[int, int]) -> pd.DataFrame:
    """:func:`per_image_frame` of both experiments at the profile's calibration size."""
    return pd.concat([per_image_frame(experiment, sizes.n_calibration_per_class, seed_e,
                                      chunk_size=sizes.chunk_size)
                      for experiment, seed_e in seeds.items()], ignore_index=True)


def fraction_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-class mean heart / fat / sex-marker pixel fractions and P(male), with the thesis's.

    Args:
        frame: :func:`per_image_frame` output (one experiment or both).

    Returns:
        One row per (experiment, class): ``n``, ``heart``, ``heart_thesis``,
        ``heart_relative_error`` (ours / thesis − 1), ``heart_se`` (standard error of our
        mean), ``fat``, ``fat_thesis`` (the thesis gives one rounded value for all classes),
        ``sex_marker``, ``sex_marker_thesis`` (81/14175 × P(male) in experiment 2, 0 in 1),
        ``p_male``, ``p_male_thesis``.
    """
    rows = []
    for (experiment, name), group in frame.groupby(["experiment", "class"], observed=True):
        experiment = int(experiment)
        heart_thesis = THESIS_FACTS["heart_fraction"][experiment][name]
        rows.append({
            "experiment": experiment, "class": name, "n": len(group),
            "heart": group["heart"].mean(), "heart_thesis": heart_thesis,
            "heart_relative_error": group["heart"].mean() / heart_thesis - 1,
            "heart_se": group["heart"].std(ddof=1) / np.sqrt(len(group)),
            "fat": group["fat"].mean(), "fat_thesis": THESIS_FACTS["fat_fraction"][experiment],
            "sex_marker": group["sex_marker"].mean(),
            "sex_marker_thesis": THESIS_FACTS["sex_marker_fraction"][experiment][name],
            "p_male": group["is_male"].mean(), "p_male_thesis": THESIS_FACTS["p_male"][name],
        })
    return pd.DataFrame(rows)


def fraction_summary(table: pd.DataFrame) -> dict[str, Any]:
    """The ``summary.json`` entry of the calibration: per experiment and class, ours and thesis.

    Args:
        table: :func:`fraction_table` output.

    Returns:
        ``{"experiments": {"1": {"NOR": {"heart": ..., "heart_thesis": ..., ...}, ...}, ...},
        "max_abs_heart_relative_error": ...}``.
    """
    columns = [c for c in table.columns if c not in ("experiment", "class")]
    experiments: dict[str, dict[str, dict[str, float]]] = {}
    for record in table.to_dict(orient="records"):
        entry = experiments.setdefault(str(record["experiment"]), {})
        entry[record["class"]] = {c: record[c] for c in columns}
    return {"experiments": experiments,
            "max_abs_heart_relative_error": float(table["heart_relative_error"].abs().max())}


def save_calibration(table: pd.DataFrame, results: Path, sizes: DataSizes,
                     seeds: dict[int, int]) -> dict[str, Any]:
    """Write ``stats/synthetic_pixel_fractions.{csv,json}`` and the ``synthetic`` entry of
    ``summary.json``; returns the entry."""
    stats = Path(results) / "stats"
    files.write_text(stats / "synthetic_pixel_fractions.csv", table.to_csv(index=False))
    files.write_json(stats / "synthetic_pixel_fractions.json", table.to_dict(orient="records"))
    entry = fraction_summary(table)
    entry.update({"n_per_class": sizes.n_calibration_per_class, "seeds": seeds,
                  "variability": "thesis"})
    files.update_summary(results, {"synthetic": entry})
    return entry


#: Largest relative difference of a class's mean heart fraction from the thesis's that still
#: counts as reproduced: the generator's calibration target.
HEART_TOLERANCE = 0.03
#: ... plus this many standard errors of our class mean (its sampling error).
HEART_SES = 3
#: P(male) of a class may differ from the thesis's by this many binomial standard errors.
P_MALE_SES = 4
SECTION = "Synthetic data against the thesis's published facts"


def report_rows(table: pd.DataFrame) -> list[ReportRow]:
    """Report rows of the chapter: per experiment and class, the heart pixel fraction and
    P(male) against the thesis's published values; per experiment, the fat fraction.

    Args:
        table: :func:`fraction_table` output.

    Returns:
        Rows of chapter ``synthetic``, each judged by a rule of
        :mod:`heatmaploss.report.verdicts`.
    """
    rows = []
    ours = verdicts.OURS_VS_THESIS
    for record in table.to_dict(orient="records"):
        experiment, name, n = int(record["experiment"]), record["class"], int(record["n"])
        where = f"experiment {experiment}, {name}"
        heart = float(record["heart_thesis"])
        # The calibration target, widened by our mean's sampling error (small profiles).
        tolerance = HEART_TOLERANCE * heart + HEART_SES * float(record["heart_se"])
        rows.append(ReportRow(
            SECTION, f"{where}: mean heart pixel fraction", chapter="synthetic",
            thesis=heart, ours=float(record["heart"]),
            ours_verdict=verdicts.within_tolerance(
                thesis=heart, value=float(record["heart"]), tolerance=round(tolerance, 6),
                compares=ours, what=f"the class mean ({HEART_TOLERANCE:.0%} calibration target "
                f"+ {HEART_SES} standard errors)"),
            ours_note=f"{n} images"))
        p = float(record["p_male_thesis"])
        rows.append(ReportRow(
            SECTION, f"{where}: share of male images", chapter="synthetic", thesis=p,
            ours=float(record["p_male"]),
            ours_verdict=verdicts.within_tolerance(
                thesis=p, value=float(record["p_male"]),
                tolerance=round(P_MALE_SES * float(np.sqrt(p * (1 - p) / n)), 6),
                compares=ours, what=f"the share ({P_MALE_SES} binomial standard errors)"),
            ours_note=f"{n} images"))
    for experiment, group in table.groupby("experiment"):
        fat = float((group["fat"] * group["n"]).sum() / group["n"].sum())
        thesis = float(group["fat_thesis"].iloc[0])
        rows.append(ReportRow(
            SECTION, f"experiment {int(experiment)}: mean fat pixel fraction",
            chapter="synthetic", thesis=thesis, ours=fat,
            ours_verdict=verdicts.equal_at_rounding(thesis=thesis, value=fat, decimals=3,
                                                    compares=ours),
            ours_note="the thesis gives one value for all classes"))
    return rows


__all__ = ["GEOMETRY_COLUMNS", "HEART_SES", "HEART_TOLERANCE", "P_MALE_SES", "SECTION",
           "calibration_frame", "experiment_seeds", "fraction_summary", "fraction_table",
           "per_image_frame", "report_rows", "save_calibration"]
