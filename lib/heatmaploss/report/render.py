"""The reproduction report rendered: ``report.md`` and a standalone ``report.html``.

:func:`render` reads the rows that the chapters stored (:mod:`heatmaploss.report.rows`) and
writes both files into the results folder. The HTML page is one self-contained file: inline
CSS and every figure embedded as a PNG data URI, so it keeps its figures wherever it is
moved or mailed. It opens with a banner when the numbers come from the ``smoke`` profile, a
legend of the verdicts, then the headline claims and one part per chapter present in
``summary.json`` (a chapter that added no rows says so). No TensorFlow.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from ..project import files
from .claims import SECTIONS
from .rows import COLUMNS, HEADERS, ReportRow, format_value, read_rows
from .verdicts import (COMPARISONS, NOT_REPRODUCED, NOT_SUPPORTED, PARTLY, PARTLY_SUPPORTED,
                       REPRODUCED, SUPPORTED, VERDICTS, Judgement)

REPORT_MD = "report.md"
REPORT_HTML = "report.html"

#: Chapters of the report, in order: key → (title, path of its entry in ``summary.json``).
#: A row names its chapter with ``ReportRow.chapter``.
CHAPTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "synthetic": ("Chapter 1: synthetic data", ("synthetic",)),
    "reanalysis": ("Chapter 2: the thesis's claims, in its published data and in our models",
                   ("reanalysis",)),
    "exp1": ("Chapter 3: experiment 1", ("experiments", "exp1")),
    "exp2": ("Chapter 4: experiment 2", ("experiments", "exp2")),
    "acdc": ("Chapter 5: ACDC", ("acdc",)),
    "decoy": ("Chapter 6: beyond the thesis, a real shortcut", ("experiments", "decoy")),
}
#: The section shown first, above the chapters.
HEADLINE_SECTION = SECTIONS["headline"]
#: Banner of a report made with the smoke profile.
SMOKE_BANNER = ("Smoke profile: a plumbing check on a few dozen images, one epoch and a few "
                "models per group. The numbers of our models mean nothing about the method; "
                "run the quick or thesis profile for results.")
#: Banner of a report made with a toy-size profile (``thesis-tiny``).
TINY_BANNER = ("Toy-size profile: every code path of the full profile on a handful of images, "
               "one epoch, VGG16 with random weights. The numbers mean nothing; it proves that "
               "the full profile runs to its end.")


def banner(profile: str | None) -> str:
    """The warning a report of ``profile`` opens with ("" for profiles with real numbers)."""
    if profile == "smoke":
        return SMOKE_BANNER
    return TINY_BANNER if profile and profile.endswith("-tiny") else ""


FIXTURE_NOTE = ("Data: the synthetic ACDC-format fixture, not patients: these numbers are "
                "about made-up hearts.")
INTRO = ("One row per claim. Columns: the value the thesis states; the value recomputed from "
         "the thesis's published per-model data (data/thesis/) and its verdict against the "
         "thesis; the value from this project's freshly trained models and its verdict. Each "
         "verdict names its criterion; an undefined one says why.")
_CLASS = {REPRODUCED: "ok", SUPPORTED: "ok", NOT_REPRODUCED: "bad", NOT_SUPPORTED: "bad",
          PARTLY: "partial", PARTLY_SUPPORTED: "partial"}
_DEFAULT_COMPARES = {"published_verdict": COMPARISONS[0], "ours_verdict": COMPARISONS[1]}


def _summary_node(summary: dict, path: tuple[str, ...]) -> Any:
    node: Any = summary
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def profile_of(results: Path, summary: dict) -> str:
    """The profile the results come from (the notebooks' ``profile`` parameter, else the
    folder's name)."""
    for info in summary.get("notebooks", {}).values():
        profile = (info.get("parameters") or {}).get("profile")
        if profile:
            return str(profile)
    return results.name


def _judgement(row: ReportRow, field: str) -> tuple[str, str, str, str]:
    """(verdict, detail, css class, compares) of a verdict cell."""
    judgement: Judgement | None = getattr(row, field)
    if judgement is None:
        legacy_here = row.verdict is not None and (
            (field == "ours_verdict") == (row.ours is not None or row.published_data is None))
        if legacy_here:
            return row.verdict, "free text, not computed by a report rule", "neutral", ""
        return "—", "", "neutral", ""
    detail = judgement.reason if judgement.verdict == "undefined" else judgement.criterion
    if judgement.verdict != "undefined" and judgement.reason:
        detail += f"; {judgement.reason}"
    compares = "" if judgement.compares == _DEFAULT_COMPARES[field] else judgement.compares
    return judgement.verdict, detail, _CLASS.get(judgement.verdict, "neutral"), compares


def _grouped(rows: list[ReportRow], summary: dict) -> list[tuple[str, str, dict]]:
    """(heading, note, {section: rows}) parts: headline, each present chapter, the rest."""
    parts: list[tuple[str, str, dict]] = []

    def sections(members: list[ReportRow]) -> dict[str, list[ReportRow]]:
        out: dict[str, list[ReportRow]] = {}
        for row in members:
            out.setdefault(row.section, []).append(row)
        return out

    headline = [r for r in rows if r.section == HEADLINE_SECTION]
    if headline:
        parts.append((HEADLINE_SECTION, "", {"": headline}))
    rest = [r for r in rows if r.section != HEADLINE_SECTION]
    unnamed = any(r.chapter not in CHAPTERS for r in rest)
    for key, (title, path) in CHAPTERS.items():
        mine = [r for r in rest if r.chapter == key]
        present = _summary_node(summary, path) is not None
        if not mine and not present:
            continue
        note = "" if mine else (
            f"This chapter ran (summary.json has {'.'.join(path)}) but no report row names it"
            + ("; rows that name no chapter are listed at the end." if unnamed else "."))
        if key == "acdc" and (_summary_node(summary, path) or {}).get("data") == "fixture":
            note = (FIXTURE_NOTE + " " + note).strip()
        parts.append((title, note, sections(mine)))
    others = [r for r in rest if r.chapter not in CHAPTERS]
    if others:
        parts.append(("Rows that name no chapter", "", sections(others)))
    return parts


def _verdict_counts(rows: list[ReportRow]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        for field in ("published_verdict", "ours_verdict"):
            judgement = getattr(row, field)
            if judgement is not None:
                per = counts.setdefault(judgement.compares, {})
                per[judgement.verdict] = per.get(judgement.verdict, 0) + 1
        if row.verdict is not None:
            per = counts.setdefault("free text (no rule)", {})
            per[row.verdict] = per.get(row.verdict, 0) + 1
    return counts


def _counts_text(rows: list[ReportRow]) -> str:
    counts = _verdict_counts(rows)
    if not counts:
        return "none yet"
    return "; ".join(f"{compares}: " + ", ".join(f"{v} {n}" for v, n in per.items())
                     for compares, per in counts.items())


def _notebooks(summary: dict) -> list[tuple[str, str, str]]:
    entries = summary.get("notebooks", {})
    return [(name, str(info.get("status", "")), format_value(info.get("seconds")))
            for name, info in sorted(entries.items())]


def _figures(results: Path) -> list[Path]:
    folder = results / "figures"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def _md(text: Any) -> str:
    """Escape a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_cells(row: ReportRow) -> list[str]:
    cells = []
    for column in COLUMNS:
        if column.endswith("_verdict"):
            verdict, detail, _, compares = _judgement(row, column)
            extra = "; ".join(x for x in (compares, detail) if x)
            cells.append(f"{verdict} ({extra})" if extra else verdict)
        elif column == "ours" and row.ours_note:
            cells.append(f"{format_value(row.ours)} ({row.ours_note})")
        else:
            cells.append(format_value(getattr(row, column)))
    return [_md(c) for c in cells]


def render_markdown(results: Path, rows: list[ReportRow], title: str) -> str:
    """The report as Markdown text (see :func:`render`); figures are links."""
    summary = files.read_summary(results)
    lines = [f"# {title}", ""]
    if banner(profile_of(results, summary)):
        lines += [f"> **{banner(profile_of(results, summary))}**", ""]
    lines += [INTRO, "", "Verdicts: " + "; ".join(f"**{v}** — {m}" for v, m in VERDICTS.items())
              + ".", "", f"Counts: {_counts_text(rows)}.", ""]
    header = ["| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for heading, note, sections in _grouped(rows, summary):
        lines += [f"## {heading}", ""] + ([note, ""] if note else [])
        for section, members in sections.items():
            if section and section != heading:
                lines += [f"### {section}", ""]
            lines += header + ["| " + " | ".join(_md_cells(r)) + " |" for r in members] + [""]
    notebooks = _notebooks(summary)
    if notebooks:
        lines += ["## Notebooks run", "", "| notebook | status | seconds |", "|---|---|---|"]
        lines += [f"| {n} | {s} | {t} |" for n, s, t in notebooks] + [""]
    figures = _figures(results)
    if figures:
        lines += ["## Figures", ""] + [f"- [{p.stem}](figures/{p.name})" for p in figures] + [""]
    return "\n".join(lines)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 80em; padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
td.ok { background: #d9f2d9 !important; }
td.bad { background: #f9d6d5 !important; }
td.partial { background: #fcefc7 !important; }
td.neutral { color: #555; }
small { color: #555; }
.banner { background: #fff3cd; border: 2px solid #e0a800; padding: 0.8em 1em; font-weight: 600; }
.note { color: #444; font-style: italic; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-family: monospace; color: #444; }
"""


def _html_cell(row: ReportRow, column: str) -> str:
    esc = html.escape
    if column.endswith("_verdict"):
        verdict, detail, css, compares = _judgement(row, column)
        small = "; ".join(esc(x) for x in (compares, detail) if x)
        return (f"<td class=\"{css}\"><b>{esc(verdict)}</b>"
                + (f"<br><small>{small}</small>" if small else "") + "</td>")
    text = esc(format_value(getattr(row, column)))
    if column == "ours" and row.ours_note:
        text += f"<br><small>{esc(row.ours_note)}</small>"
    return f"<td>{text}</td>"


def _embedded(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure id=\"{html.escape(path.stem)}\"><img alt=\"{html.escape(path.stem)}\" "
            f"src=\"data:image/png;base64,{data}\"><figcaption>{html.escape(path.stem)}"
            "</figcaption></figure>")


def render_html(results: Path, rows: list[ReportRow], title: str) -> str:
    """The report as one standalone HTML page (see :func:`render`)."""
    esc = html.escape
    summary = files.read_summary(results)
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    if banner(profile_of(results, summary)):
        parts.append(f"<p class=\"banner\">{esc(banner(profile_of(results, summary)))}</p>")
    parts += [f"<p>{esc(INTRO)}</p>", "<table><thead><tr><th>verdict</th><th>meaning</th>"
              "</tr></thead><tbody>"]
    parts += [f"<tr><td class=\"{_CLASS.get(v, 'neutral')}\">{esc(v)}</td><td>{esc(m)}</td></tr>"
              for v, m in VERDICTS.items()]
    parts += ["</tbody></table>", f"<p>Counts: {esc(_counts_text(rows))}.</p>"]
    header = ("<table><thead><tr>" + "".join(f"<th>{esc(HEADERS[c])}</th>" for c in COLUMNS)
              + "</tr></thead><tbody>")
    for heading, note, sections in _grouped(rows, summary):
        parts.append(f"<h2>{esc(heading)}</h2>")
        if note:
            parts.append(f"<p class=\"note\">{esc(note)}</p>")
        for section, members in sections.items():
            if section and section != heading:
                parts.append(f"<h3>{esc(section)}</h3>")
            parts.append(header)
            parts += ["<tr>" + "".join(_html_cell(r, c) for c in COLUMNS) + "</tr>"
                      for r in members]
            parts.append("</tbody></table>")
    notebooks = _notebooks(summary)
    if notebooks:
        parts.append("<h2>Notebooks run</h2><table><thead><tr><th>notebook</th><th>status</th>"
                     "<th>seconds</th></tr></thead><tbody>")
        parts += [f"<tr><td>{esc(n)}</td><td>{esc(s)}</td><td>{esc(t)}</td></tr>"
                  for n, s, t in notebooks]
        parts.append("</tbody></table>")
    figures = _figures(results)
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [_embedded(p) for p in figures]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render(results_dir: str | os.PathLike, title: str | None = None) -> dict[str, Path]:
    """Write ``<results>/report.md`` and ``<results>/report.html`` from the stored rows.

    Args:
        results_dir: a profile's results folder.
        title: page title (default: "Reproduction report — profile <profile>").

    Returns:
        ``{"markdown": path, "html": path}``.
    """
    results = Path(results_dir)
    rows = read_rows(results)
    profile = profile_of(results, files.read_summary(results))
    title = title or f"Reproduction report — profile {profile}"
    return {
        "markdown": files.write_text(results / REPORT_MD, render_markdown(results, rows, title)),
        "html": files.write_text(results / REPORT_HTML, render_html(results, rows, title)),
    }


__all__ = ["CHAPTERS", "FIXTURE_NOTE", "HEADLINE_SECTION", "REPORT_HTML", "REPORT_MD",
           "SMOKE_BANNER", "TINY_BANNER", "banner", "profile_of", "render", "render_html",
           "render_markdown"]
