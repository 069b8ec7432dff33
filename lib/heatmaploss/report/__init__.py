"""The reproduction report: the thesis's claims beside the published data and our models.

    from heatmaploss import report
    report.add_rows(results_dir, [report.ReportRow(section, claim, thesis=..., ours=...)])
    report.render(results_dir)          # report.md + a standalone report.html

* :mod:`.rows` — :class:`ReportRow` and the process-safe row store of a results folder;
* :mod:`.claims` — the thesis's quoted numbers and the rules that judge a value against them;
* :mod:`.render` — Markdown and HTML.

No TensorFlow.
"""

from .render import REPORT_HTML, REPORT_MD, render
from .rows import ReportRow, add_rows, display_table, format_value, read_rows, rows_path

__all__ = ["REPORT_HTML", "REPORT_MD", "ReportRow", "add_rows", "display_table", "format_value",
           "read_rows", "render", "rows_path"]
