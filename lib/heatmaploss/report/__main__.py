"""Check a results folder's report rows: ``python -m heatmaploss.report RESULTS_DIR``.

Prints every row that contradicts its own values (:func:`heatmaploss.report.report_problems`)
and the number of rows checked; the exit status is 1 when there is a problem.
"""

from __future__ import annotations

import sys

from .check import report_problems
from .rows import read_rows


def main(argv: list[str] | None = None) -> int:
    """Check every stored row of a results folder; print each problem; 1 if there are any."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m heatmaploss.report RESULTS_DIR", file=sys.stderr)
        return 2
    rows = read_rows(args[0])
    problems = report_problems(rows)
    for problem in problems:
        print(problem)
    print(f"{len(rows)} rows checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
