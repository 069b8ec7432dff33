"""The reproduction report: one row per thesis claim, rendered as Markdown and HTML.

Each notebook adds rows with :func:`add_rows` — the thesis's value, the value recomputed from
the thesis's published data, the value from this project's freshly trained models, and a
verdict. Rows live in ``<results>/stats/report_rows.json``, keyed by (section, claim), so
re-running a notebook updates its rows instead of duplicating them, and notebooks running in
parallel do not lose each other's rows. :func:`render` writes ``<results>/report.md`` and a
standalone ``<results>/report.html`` (inline CSS, no external assets). No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from . import io

ROWS_FILE = "report_rows.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
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
    new = [io.to_jsonable(dataclasses.asdict(_as_row(r))) for r in rows]

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

    written = io.update_json(rows_path(results_dir), merge, default={"rows": []})
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


def _verdict_class(verdict: str | None) -> str:
    text = (verdict or "").strip().lower()
    if text.startswith("reproduced"):
        return "ok"
    if text.startswith("not"):
        return "bad"
    if text.startswith(("partly", "partially", "mixed")):
        return "partial"
    return "neutral"


def _sections(rows: list[ReportRow]) -> dict[str, list[ReportRow]]:
    out: dict[str, list[ReportRow]] = {}
    for row in rows:
        out.setdefault(row.section, []).append(row)
    return out


def _cells(row: ReportRow) -> list[str]:
    return [format_value(getattr(row, c)) if c != "verdict" else (row.verdict or "—")
            for c in COLUMNS]


def _figures(results: Path) -> list[Path]:
    return sorted((results / "figures").glob("*.png")) if (results / "figures").is_dir() else []


def _notebooks(results: Path) -> list[tuple[str, str, str]]:
    entries = io.read_summary(results).get("notebooks", {})
    return [(name, str(info.get("status", "")), format_value(info.get("seconds")))
            for name, info in sorted(entries.items())]


def _verdict_counts(rows: list[ReportRow]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        key = (row.verdict or "no verdict").split(":")[0].split("(")[0].strip()
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


INTRO = ("One row per claim of the thesis (Callanan 2022). Columns: the value the thesis "
         "states; the value recomputed from the thesis's published per-model data "
         "(`data/thesis/`); the value from this project's freshly trained models; the verdict.")


def _md(text: str) -> str:
    """Escape a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(results: Path, rows: list[ReportRow], title: str) -> str:
    """The report as Markdown text (see :func:`render`)."""
    lines = [f"# {title}", "", INTRO, "", f"Verdicts: {_verdict_counts(rows) or 'none yet'}.", ""]
    for section, members in _sections(rows).items():
        lines += [f"## {section}", "", "| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |",
                  "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_md(c) for c in _cells(r)) + " |" for r in members]
        lines.append("")
    notebooks = _notebooks(results)
    if notebooks:
        lines += ["## Notebooks run", "", "| notebook | status | seconds |", "|---|---|---|"]
        lines += [f"| {n} | {s} | {t} |" for n, s, t in notebooks] + [""]
    figures = _figures(results)
    if figures:
        lines += ["## Figures", ""]
        lines += [f"- [{p.stem}](figures/{p.name})" for p in figures] + [""]
    return "\n".join(lines)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 72em; padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
td.ok { background: #d9f2d9 !important; }
td.bad { background: #f9d6d5 !important; }
td.partial { background: #fcefc7 !important; }
td.neutral { color: #555; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def render_html(results: Path, rows: list[ReportRow], title: str) -> str:
    """The report as a standalone HTML page (see :func:`render`)."""
    esc = html.escape
    intro = esc(INTRO).replace("`data/thesis/`", "<code>data/thesis/</code>")
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>", f"<p>{intro}</p>",
             f"<p>Verdicts: {esc(_verdict_counts(rows) or 'none yet')}.</p>"]
    for section, members in _sections(rows).items():
        parts.append(f"<h2>{esc(section)}</h2><table><thead><tr>"
                     + "".join(f"<th>{esc(HEADERS[c])}</th>" for c in COLUMNS)
                     + "</tr></thead><tbody>")
        for row in members:
            cells = _cells(row)
            tds = [f"<td class=\"{_verdict_class(row.verdict)}\">{esc(v)}</td>" if c == "verdict"
                   else f"<td>{esc(v)}</td>" for c, v in zip(COLUMNS, cells)]
            parts.append("<tr>" + "".join(tds) + "</tr>")
        parts.append("</tbody></table>")
    notebooks = _notebooks(results)
    if notebooks:
        parts.append("<h2>Notebooks run</h2><table><thead><tr><th>notebook</th><th>status</th>"
                     "<th>seconds</th></tr></thead><tbody>")
        parts += [f"<tr><td>{esc(n)}</td><td>{esc(s)}</td><td>{esc(t)}</td></tr>"
                  for n, s, t in notebooks]
        parts.append("</tbody></table>")
    figures = _figures(results)
    if figures:
        parts.append("<h2>Figures</h2><ul>")
        parts += [f"<li><a href=\"figures/{esc(p.name)}\">{esc(p.stem)}</a></li>" for p in figures]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render(results_dir: str | os.PathLike, title: str | None = None) -> dict[str, Path]:
    """Write ``<results>/report.md`` and ``<results>/report.html`` from the stored rows.

    Args:
        results_dir: a profile's results folder.
        title: page title (default: "Reproduction report — profile <folder name>").

    Returns:
        ``{"markdown": path, "html": path}``.
    """
    results = Path(results_dir)
    rows = read_rows(results)
    title = title or f"Reproduction report — profile {results.name}"
    return {
        "markdown": io.write_text(results / REPORT_MD, render_markdown(results, rows, title)),
        "html": io.write_text(results / REPORT_HTML, render_html(results, rows, title)),
    }


__all__ = ["ReportRow", "add_rows", "display_table", "format_value", "read_rows", "render",
           "rows_path"]
