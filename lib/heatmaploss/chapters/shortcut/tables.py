"""The shortcut chapter's outputs: the ``summary.json`` part, statistics files, report rows and
the tables the notebook shows — all computed from the per-model table and
:func:`~.analysis.group_statistics`. TensorFlow-free.

``summary.json`` (``experiments.decoy``; the README documents it)::

    models            [one record per model: group, seed, model_path, accuracy{matched,
                       shuffled, absent}, flip_rate, removal_delta, marker_mass{explainer},
                       empty_map_share{explainer}, uses_shortcut, gamed, corner_mass{explainer},
                       heart_mass{explainer}, probe{layer}, learning_rate, heatmap_weight]
    groups.<group>    {n_models, shuffled_accuracy{mean, sd, min, max, by_seed},
                       gap_to_oracle, flip_rate_mean, n_uses_shortcut, n_gamed, p_vs_cce,
                       p_holm, p_vs_oracle, p_holm_vs_oracle, condition, kind, setting}
    oracle            the oracle group's name
    detection.<explainer>  {spearman_rho, p, n}
    target            {met, groups, text}; thresholds {shortcut_gap, flip}

``marker_mass`` is the mass on the drawn marker with empty maps counted as zero mass (a model
whose maps are all empty shows 0, not an undefined value); ``empty_map_share`` says how many
maps were empty.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ...names import TEST_SETS
from ...project import files
from ...report import verdicts
from ...report.rows import ReportRow
from .analysis import (ORACLE, REFERENCE, TARGET_MEAN_GAP, TARGET_WORST_GAP, target_verdict)

SECTION = "Beyond the thesis: a class-coded shortcut (decoy marker)"


def _explainers(models: pd.DataFrame, prefix: str, region: str) -> list[str]:
    suffix = f"_{region}"
    return [c[len(prefix):-len(suffix)] for c in models
            if c.startswith(prefix) and c.endswith(suffix)]


def model_records(models: pd.DataFrame) -> list[dict]:
    """``experiments.decoy.models``: one record per model."""
    records = []
    for row in models.to_dict("records"):
        mass = {e: row[f"mass0_{e}_decoy_marker"]
                for e in _explainers(models, "mass0_", "decoy_marker")}
        records.append({
            "group": row["group"], "seed": row["seed"], "model_path": row["model_path"],
            "accuracy": {s: row[f"acc_{s}"] for s in TEST_SETS},
            "flip_rate": row["flip_rate"], "removal_delta": row["removal_delta"],
            "marker_mass": mass,
            "empty_map_share": {e: row.get(f"empty_{e}") for e in mass},
            "corner_mass": {e: row.get(f"mass0_{e}_decoy_corners") for e in mass},
            "heart_mass": {e: row.get(f"mass_{e}_heart") for e in mass},
            "probe": {c[6:]: row[c] for c in models if c.startswith("probe_")},
            "uses_shortcut": bool(row["uses_shortcut"]), "gamed": bool(row["gamed"]),
            "learning_rate": row["learning_rate"], "heatmap_weight": row["heatmap_weight"]})
    return records


def summary_part(models: pd.DataFrame, statistics: pd.DataFrame, detection: dict,
                 settings: dict[str, dict], thresholds: dict[str, float]) -> dict:
    """The chapter's ``summary.json`` part (see the module docstring)."""
    groups = {}
    for row in statistics.to_dict("records"):
        groups[row["group"]] = {
            "n_models": row["n_models"], "condition": row["condition"], "kind": row["kind"],
            "shuffled_accuracy": {"mean": row["shuffled_mean"], "sd": row["shuffled_sd"],
                                  "min": row["shuffled_min"], "max": row["shuffled_max"],
                                  "by_seed": row["shuffled_by_seed"]},
            "gap_to_oracle": row["gap_to_oracle"], "flip_rate_mean": row["flip_rate_mean"],
            "n_uses_shortcut": row["n_uses_shortcut"], "n_gamed": row["n_gamed"],
            "p_vs_cce": row["p_vs_cce"], "p_holm": row["p_holm"],
            "p_vs_oracle": row["p_vs_oracle"], "p_holm_vs_oracle": row["p_holm_vs_oracle"],
            "setting": settings.get(row["group"], {})}
    return {"experiments": {"decoy": {
        "models": model_records(models), "groups": groups, "oracle": ORACLE,
        "detection": detection, "target": target_verdict(statistics),
        "thresholds": thresholds}}}


def save_statistics(models: pd.DataFrame, statistics: pd.DataFrame, detection: dict,
                    settings: dict[str, dict], thresholds: dict[str, float],
                    results_dir: str | Path) -> dict:
    """Write ``stats/decoy_models.csv``, ``stats/decoy_groups.{csv,json}`` and merge
    :func:`summary_part` into ``summary.json``; returns the part."""
    folder = Path(results_dir) / "stats"
    files.write_text(folder / "decoy_models.csv", models.to_csv(index=False))
    files.write_text(folder / "decoy_groups.csv", statistics.to_csv(index=False))
    files.write_json(folder / "decoy_groups.json", statistics.to_dict(orient="records"))
    part = summary_part(models, statistics, detection, settings, thresholds)
    # The whole entry is replaced: a re-run with fewer conditions must not keep stale groups.
    files.update_json(Path(results_dir) / files.SUMMARY_NAME,
                      lambda current: {**(current or {}), "experiments": {
                          **(current or {}).get("experiments", {}),
                          "decoy": part["experiments"]["decoy"]}}, default={})
    return part


def _pct(value: float) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def group_table(statistics: pd.DataFrame, costs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The chapter's table: one row per group, accuracies in percent, every seed's value."""
    ratio = {}
    if costs is not None and "ratio_to_main_cce" in costs:
        ratio = {g: r for (_, g), r in costs["ratio_to_main_cce"].items()}
    return pd.DataFrame([{
        "condition": r["condition"], "group": r["group"], "models": r["n_models"],
        "shuffled % (mean ± sd)": f"{_pct(r['shuffled_mean'])} ± {_pct(r['shuffled_sd'])}",
        "worst seed %": _pct(r["shuffled_min"]),
        "gap to oracle (points)": _pct(r["gap_to_oracle"]),
        "flip rate": round(r["flip_rate_mean"], 3),
        "uses shortcut": f"{r['n_uses_shortcut']}/{r['n_models']}",
        "gamed": f"{r['n_gamed']}/{r['n_models']}",
        "p vs CCE (Holm)": r["p_holm"] if math.isfinite(r["p_holm"]) else r["p_vs_cce"],
        "p vs oracle (Holm)": (r["p_holm_vs_oracle"] if math.isfinite(r["p_holm_vs_oracle"])
                               else r["p_vs_oracle"]),
        "step time / CCE": round(ratio.get(r["group"], math.nan), 2),
        "every seed %": " ".join(_pct(v) for v in r["shuffled_by_seed"])}
        for r in statistics.to_dict("records")])


def settings_table(settings: dict[str, dict]) -> pd.DataFrame:
    """The setting every group's seeds were trained at (one row per group)."""
    return pd.DataFrame(settings).T.rename_axis("group")


def detection_table(detection: dict[str, dict]) -> pd.DataFrame:
    """Spearman ρ of each explainer's marker mass with the flip rate (one row per explainer)."""
    return pd.DataFrame(detection).T.rename_axis("explainer")


def closing_table(statistics: pd.DataFrame, costs: pd.DataFrame | None = None) -> str:
    """The group table as Markdown."""
    table = group_table(statistics, costs).drop(columns=["every seed %"])
    header = "| " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.3g}"
    return str(value)


def _removal(row: dict) -> verdicts.Judgement:
    """The rule's judgement of "the group's loss removes the shortcut" (its statistics row):
    the gap to the oracle closed (mean and worst seed), else better than cross-entropy."""
    if row["n_models"] < 3:
        return verdicts.not_compared(compares=verdicts.OURS_VS_CLAIM,
                                     reason=f"{row['n_models']} models; at least 3 are needed")
    p = row["p_holm"] if math.isfinite(row["p_holm"]) else row["p_vs_cce"]
    return verdicts.closes_gap(
        gap=row["gap_to_oracle"], worst_gap=row["worst_gap_to_oracle"], p=p,
        mean_limit=TARGET_MEAN_GAP, worst_limit=TARGET_WORST_GAP,
        compares=verdicts.OURS_VS_CLAIM, reason="no comparison with cross-entropy")


_REMOVAL_WORDS = {verdicts.SUPPORTED: "shortcut removed",
                  verdicts.PARTLY_SUPPORTED: "shortcut partly removed",
                  verdicts.NOT_SUPPORTED: "shortcut kept"}


def removal_verdict(row: dict) -> str:
    """What a group's loss did to the shortcut, in words, from its statistics row."""
    if row["group"] in (REFERENCE, ORACLE):
        return "reference"
    judgement = _removal(row)
    return _REMOVAL_WORDS.get(judgement.verdict, f"undefined: {judgement.reason}")


def report_rows(statistics: pd.DataFrame, detection: dict) -> list[ReportRow]:
    """Report rows: does cross-entropy use the marker, what each main group's loss did, the
    target, and whether any explainer's marker mass tracks reliance."""
    main = statistics[statistics["condition"] == "main"].set_index("group")
    rows = []
    if REFERENCE in main.index and ORACLE in main.index:
        cce, oracle = main.loc[REFERENCE], main.loc[ORACLE]
        rows.append(ReportRow(
            SECTION, "cross-entropy models use a perfectly predictive marker outside the heart",
            thesis="not tested (experiment 2's marker was barely used)",
            ours=(f"shuffled accuracy {_pct(cce['shuffled_mean'])} % vs the oracle's "
                  f"{_pct(oracle['shuffled_mean'])} %; flip rate {cce['flip_rate_mean']:.2f}"),
            ours_verdict=verdicts.at_least(
                value=int(cce["n_uses_shortcut"]), threshold=int(cce["n_models"]) // 2 + 1,
                compares=verdicts.OURS_VS_CLAIM, what="models that use the marker"),
            ours_note=f"{cce['n_uses_shortcut']}/{cce['n_models']} models use it"))
    for group, row in main.iterrows():
        if group in (REFERENCE, ORACLE):
            continue
        record = {**row.to_dict(), "group": group}
        rows.append(ReportRow(
            SECTION, f"the {group} loss removes the shortcut",
            thesis="open question (future work)",
            ours=(f"shuffled {_pct(row['shuffled_mean'])} ± {_pct(row['shuffled_sd'])} %, worst "
                  f"{_pct(row['shuffled_min'])} %, {_pct(row['gap_to_oracle'])} points below "
                  f"the oracle"),
            ours_verdict=_removal(record),
            ours_note=f"gamed {row['n_gamed']}/{row['n_models']}; Holm p vs CCE "
                 f"{row['p_holm']:.2g}" if math.isfinite(row["p_holm"])
                 else f"gamed {row['n_gamed']}/{row['n_models']}"))
    target = target_verdict(statistics)
    rows.append(ReportRow(SECTION, "an attribution method in the loss reaches the oracle",
                          thesis="open question", ours=target["text"],
                          ours_verdict=verdicts.at_least(
                              value=len(target["groups"]), threshold=1,
                              compares=verdicts.OURS_VS_CLAIM,
                              what="attribution groups within the target of the oracle")))
    for explainer, d in detection.items():
        rows.append(ReportRow(
            SECTION, f"{explainer}'s marker mass tracks reliance (flip rate)",
            thesis="not tested",
            ours=f"Spearman ρ = {d['spearman_rho']:.2f}, p = {d['p']:.2g}, n = {d['n']}"
            if math.isfinite(d["spearman_rho"]) else None,
            ours_verdict=verdicts.direction_and_significance(
                p=d["p"], effect=d["spearman_rho"], expected_sign=1,
                compares=verdicts.OURS_VS_CLAIM,
                effect_name="Spearman ρ of marker mass and flip rate",
                reason=None if math.isfinite(d["spearman_rho"]) else
                "the marker mass or the flip rate is the same for every model")))
    return rows


__all__ = ["SECTION", "closing_table", "detection_table", "group_table", "model_records",
           "removal_verdict", "report_rows", "save_statistics", "settings_table", "summary_part"]
