"""The reproduction report: the thesis's claims beside the published data and our models.

    from heatmaploss import report
    from heatmaploss.report import verdicts
    row = report.ReportRow(section, claim, chapter="acdc", thesis=0.9, ours=0.87,
                           ours_verdict=verdicts.within_tolerance(
                               thesis=0.9, value=0.87, tolerance=0.05,
                               compares=verdicts.OURS_VS_THESIS))
    report.add_rows(results_dir, [row])
    report.render(results_dir)          # report.md + a standalone report.html
    report.report_problems(report.read_rows(results_dir))   # [] when every row is consistent

* :mod:`.verdicts` — the verdict vocabulary and the rules that compute every verdict;
* :mod:`.rows` — :class:`ReportRow` and the process-safe row store of a results folder;
* :mod:`.claims` — the thesis's quoted numbers and the rows of its claims;
* :mod:`.check` — whether a row contradicts its own values;
* :mod:`.render` — Markdown and a self-contained HTML page.

No TensorFlow.
"""

from . import verdicts
from .check import report_problems, row_problems
from .render import CHAPTERS, REPORT_HTML, REPORT_MD, render
from .rows import ReportRow, add_rows, display_table, format_value, read_rows, rows_path
from .verdicts import Judgement

__all__ = ["CHAPTERS", "Judgement", "REPORT_HTML", "REPORT_MD", "ReportRow", "add_rows",
           "display_table", "format_value", "read_rows", "render", "report_problems",
           "row_problems", "rows_path", "verdicts"]
