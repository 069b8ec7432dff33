"""Rows of the reproduction report: one per claim, stored per results folder.

Each notebook adds rows with :func:`add_rows` — the thesis's value, the value recomputed from
the thesis's published data, the value from this project's freshly trained models, and a
verdict for each (computed by the rules of :mod:`heatmaploss.report.verdicts`). Rows live in
``<results>/stats/report_rows.json``, keyed by (section, claim), so re-running a notebook
updates its rows instead of duplicating them, and notebooks running in parallel do not lose
each other's rows. :func:`heatmaploss.report.render.render` writes them as Markdown and HTML.
No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from ..project import files
from .verdicts import Judgement

ROWS_FILE = "report_rows.json"
#: The columns of the rendered table, in order, and their headers.
COLUMNS = ("claim", "thesis", "published_data", "published_verdict", "ours", "ours_verdict",
           "note")
HEADERS = {"claim": "claim", "thesis": "thesis", "published_data": "published data",
           "published_verdict": "verdict: published data",
           "ours": "this project (our models or data)", "ours_verdict": "verdict: this project",
           "note": "note"}
_JUDGEMENTS = ("published_verdict", "ours_verdict")


@dataclass(frozen=True)
class ReportRow:
    """One claim and how it fared, in the published data and in our models.

    Attributes:
        section: heading the row appears under (e.g. ``"Experiment 1: heart overlap"``).
        claim: what is claimed (unique within the section; with ``section`` the row's key).
        thesis: the value the thesis states (number or text), or ``None``.
        published_data: the value recomputed from the thesis's published data, or ``None``.
        ours: the value from this project's freshly trained models, or ``None``.
        published_verdict: the :class:`~heatmaploss.report.verdicts.Judgement` of
            ``published_data`` (made by a rule of :mod:`heatmaploss.report.verdicts`).
        ours_verdict: the judgement of ``ours``.
        note: a short note on the claim or the published data.
        ours_note: a short note on our models (protocol, models per group ...).
        chapter: the chapter that owns the row (a key of
            :data:`heatmaploss.report.render.CHAPTERS`, e.g. ``"exp1"``).
        verdict: free-text verdict of rows written before the verdict rules existed; still
            rendered, but :func:`heatmaploss.report.check.row_problems` flags it. New rows
            use ``published_verdict`` / ``ours_verdict``.

    A field left ``None`` keeps the value an earlier :func:`add_rows` stored, so a later
    notebook can fill ``ours`` and ``ours_verdict`` without repeating the thesis's value.
    """

    section: str
    claim: str
    thesis: Any = None
    published_data: Any = None
    ours: Any = None
    published_verdict: Judgement | Mapping[str, Any] | None = None
    ours_verdict: Judgement | Mapping[str, Any] | None = None
    note: str | None = None
    ours_note: str | None = None
    chapter: str | None = None
    verdict: str | None = None

    def __post_init__(self) -> None:
        for name in ("section", "claim"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"ReportRow.{name}={value!r}: must be a non-empty string")
        for name in _JUDGEMENTS:
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, Judgement(**value))
            elif value is not None and not isinstance(value, Judgement):
                raise TypeError(f"ReportRow.{name} must be a Judgement (a rule of "
                                f"heatmaploss.report.verdicts), got {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (judgements as dicts)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in _JUDGEMENTS:
            if out[name] is not None:
                out[name] = out[name].to_dict()
        return files.to_jsonable(out)


def _as_row(row: ReportRow | Mapping[str, Any]) -> ReportRow:
    if isinstance(row, ReportRow):
        return row
    if isinstance(row, Mapping):
        allowed = {f.name for f in dataclasses.fields(ReportRow)}
        unknown = set(row) - allowed
        if unknown:
            raise ValueError(f"report row keys {sorted(unknown)} unknown; allowed: "
                             f"{', '.join(sorted(allowed))}")
        return ReportRow(**row)
    raise TypeError(f"report row must be a ReportRow or a mapping, got {type(row).__name__}")


def rows_path(results_dir: str | os.PathLike) -> Path:
    """``<results>/stats/report_rows.json``."""
    return Path(results_dir) / "stats" / ROWS_FILE


def add_rows(results_dir: str | os.PathLike,
             rows: Iterable[ReportRow | Mapping[str, Any]]) -> list[ReportRow]:
    """Add or update report rows (process-safe; idempotent).

    A row whose (section, claim) already exists is updated field by field: fields given as
    ``None`` keep their stored value. New rows are appended, so the report keeps the order in
    which claims were first added.

    Args:
        results_dir: a profile's results folder.
        rows: :class:`ReportRow` objects or dicts with its fields.

    Returns:
        All stored rows after the update.
    """
    new = [_as_row(r).to_dict() for r in rows]

    def merge(current: Any) -> dict:
        stored = list((current or {}).get("rows", []))
        index = {(r["section"], r["claim"]): i for i, r in enumerate(stored)}
        for row in new:
            key = (row["section"], row["claim"])
            if key in index:
                old = stored[index[key]]
                stored[index[key]] = {**old, **{k: v for k, v in row.items() if v is not None}}
            else:
                index[key] = len(stored)
                stored.append(row)
        return {"rows": stored}

    written = files.update_json(rows_path(results_dir), merge, default={"rows": []})
    return [_from_stored(r) for r in written["rows"]]


def _from_stored(stored: Mapping[str, Any]) -> ReportRow:
    """A stored row (fields this version does not know are dropped, e.g. from a newer one)."""
    known = {f.name for f in dataclasses.fields(ReportRow)}
    return ReportRow(**{k: v for k, v in stored.items() if k in known})


def read_rows(results_dir: str | os.PathLike) -> list[ReportRow]:
    """All stored rows, in insertion order (empty list when none were added)."""
    import json

    path = rows_path(results_dir)
    if not path.exists():
        return []
    return [_from_stored(r) for r in json.loads(path.read_text(encoding="utf-8"))["rows"]]


def format_value(value: Any, digits: int = 4) -> str:
    """Readable text for a report cell: 4 significant digits, ``—`` for missing values.

    Args:
        value: number, text, sequence (joined with " / ") or mapping.
        digits: significant digits of floats.

    Returns:
        The text.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.{digits}g}"
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        return format_value(value.item(), digits)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {format_value(v, digits)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " / ".join(format_value(v, digits) for v in value)
    return str(value)


def display_table(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A copy of ``frame`` with every cell formatted by :func:`format_value` (for notebooks)."""
    return frame.apply(lambda col: col.map(lambda v: format_value(v, digits)))


__all__ = ["COLUMNS", "HEADERS", "ROWS_FILE", "ReportRow", "add_rows", "display_table",
           "format_value", "read_rows", "rows_path"]
