"""The reproduction report rendered: ``report.md`` and a standalone ``report.html``.

:func:`render` reads the rows that the chapters stored (:mod:`heatmaploss.report.rows`) and
writes both files into the results folder (inline CSS, no external assets). No TensorFlow.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from ..project import files
from .rows import COLUMNS, HEADERS, ReportRow, format_value, read_rows

REPORT_MD = "report.md"
REPORT_HTML = "report.html"


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
    entries = files.read_summary(results).get("notebooks", {})
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
        "markdown": files.write_text(results / REPORT_MD, render_markdown(results, rows, title)),
        "html": files.write_text(results / REPORT_HTML, render_html(results, rows, title)),
    }


__all__ = ["REPORT_HTML", "REPORT_MD", "render", "render_html", "render_markdown"]
