"""Rows of the reproduction report: one per thesis claim, stored per results folder.

Each notebook adds rows with :func:`add_rows` — the thesis's value, the value recomputed from
the thesis's published data, the value from this project's freshly trained models, and a
verdict. Rows live in ``<results>/stats/report_rows.json``, keyed by (section, claim), so
re-running a notebook updates its rows instead of duplicating them, and notebooks running in
parallel do not lose each other's rows. :func:`heatmaploss.report.render.render` writes them as Markdown and HTML. No TensorFlow.
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

ROWS_FILE = "report_rows.json"
COLUMNS = ("claim", "thesis", "published_data", "ours", "verdict", "note")
HEADERS = {"claim": "claim", "thesis": "thesis", "published_data": "recomputed from published data",
           "ours": "this project's models", "verdict": "verdict", "note": "note"}


@dataclass(frozen=True)
class ReportRow:
    """One claim of the thesis and how it fared.

    Attributes:
        section: heading the row appears under (e.g. ``"Experiment 1: heart overlap"``).
        claim: what is claimed (unique within the section; with ``section`` the row's key).
        thesis: the value the thesis states (number or text), or ``None``.
        published_data: the value recomputed from the thesis's published data, or ``None``.
        ours: the value from this project's freshly trained models, or ``None``.
        verdict: e.g. ``"reproduced"``, ``"not reproduced"``, ``"partly reproduced"``,
            ``"n/a"``.
        note: a short explanation of the verdict.

    A field left ``None`` keeps the value an earlier :func:`add_rows` stored, so a later
    notebook can fill ``ours`` without repeating the thesis's value.
    """

    section: str
    claim: str
    thesis: Any = None
    published_data: Any = None
    ours: Any = None
    verdict: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        for name in ("section", "claim"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"ReportRow.{name}={value!r}: must be a non-empty string")


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
    new = [files.to_jsonable(dataclasses.asdict(_as_row(r))) for r in rows]

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
    return [ReportRow(**r) for r in written["rows"]]


def read_rows(results_dir: str | os.PathLike) -> list[ReportRow]:
    """All stored rows, in insertion order (empty list when none were added)."""
    import json

    path = rows_path(results_dir)
    if not path.exists():
        return []
    return [ReportRow(**r) for r in json.loads(path.read_text(encoding="utf-8"))["rows"]]


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
