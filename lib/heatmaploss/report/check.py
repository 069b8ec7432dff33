"""Does any report row contradict its own values? (What the tests check on every report.)

:func:`row_problems` lists, for one :class:`~heatmaploss.report.rows.ReportRow`, everything a
reader could trip on: a value without a verdict, a verdict next to a missing value, a verdict
its rule does not give for the stored inputs, inputs that differ from the values shown, a
comparison in the wrong column, or a free-text verdict not made by a rule. No TensorFlow.

    python -m heatmaploss.report results/quick     # lists problems; exit status 1 if any
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from .rows import ReportRow
from .verdicts import (OURS_VS_CLAIM, OURS_VS_THESIS, PUBLISHED_VS_CLAIM, PUBLISHED_VS_THESIS,
                       UNDEFINED, Judgement, missing, recheck)

#: The comparisons each value column may hold.
_COLUMN_COMPARES = {"published_data": (PUBLISHED_VS_THESIS, PUBLISHED_VS_CLAIM),
                    "ours": (OURS_VS_THESIS, OURS_VS_CLAIM)}
_VERDICT_OF = {"published_data": "published_verdict", "ours": "ours_verdict"}
_SAYS_UNDEFINED = re.compile(r"\b(undefined|nan)\b", re.IGNORECASE)


def _shown_missing(value: Any) -> bool:
    """True when the displayed value is missing, or is text that says it is undefined."""
    if isinstance(value, str):
        return missing(value) or bool(_SAYS_UNDEFINED.search(value))
    return missing(value)


def _same(shown: Any, judged: Any) -> bool:
    if isinstance(shown, (int, float)) and not isinstance(shown, bool) \
            and isinstance(judged, (int, float)) and not isinstance(judged, bool):
        return math.isclose(float(shown), float(judged), rel_tol=1e-9, abs_tol=1e-15)
    return shown == judged


def _judgement_problems(row: ReportRow, column: str, judgement: Judgement) -> list[str]:
    value = getattr(row, column)
    problems = []
    if judgement.compares not in _COLUMN_COMPARES[column]:
        problems.append(f"{column}: a {judgement.compares!r} verdict in this column")
    if judgement.verdict != UNDEFINED and _shown_missing(value):
        problems.append(f"{column}: verdict {judgement.verdict!r} next to a missing value "
                        f"({value!r})")
    if not judgement.rule:
        problems.append(f"{column}: verdict {judgement.verdict!r} not made by a rule")
        return problems
    try:
        again = recheck(judgement)
    except (TypeError, ValueError) as exc:
        return problems + [f"{column}: rule {judgement.rule!r} cannot be re-run: {exc}"]
    if again.verdict != judgement.verdict:
        problems.append(f"{column}: stored verdict {judgement.verdict!r}, but rule "
                        f"{judgement.rule!r} gives {again.verdict!r} for its inputs")
    inputs = judgement.inputs
    if "value" in inputs and not isinstance(value, (list, tuple, dict)) \
            and not (isinstance(value, str) and not isinstance(inputs["value"], str)) \
            and not (missing(value) and missing(inputs["value"])) \
            and not _same(value, inputs["value"]):
        problems.append(f"{column}: shows {value!r} but the verdict judged "
                        f"{inputs['value']!r}")
    if "thesis" in inputs and isinstance(row.thesis, (int, float, str)) \
            and not isinstance(row.thesis, bool) and not (
                isinstance(row.thesis, str) and not isinstance(inputs["thesis"], str)) \
            and not _same(row.thesis, inputs["thesis"]):
        problems.append(f"{column}: the thesis column shows {row.thesis!r} but the verdict "
                        f"judged {inputs['thesis']!r}")
    return problems


def row_problems(row: ReportRow) -> list[str]:
    """Everything in ``row`` that contradicts its own values (empty when it is consistent).

    Args:
        row: a stored report row.

    Returns:
        One message per problem, e.g. ``"ours: verdict 'reproduced' next to a missing value
        (nan)"``.
    """
    problems = []
    if row.verdict is not None:
        problems.append(f"free-text verdict {row.verdict!r} not made by a rule of "
                        "heatmaploss.report.verdicts")
    for column, field in _VERDICT_OF.items():
        value, judgement = getattr(row, column), getattr(row, field)
        if judgement is None:
            if value is not None and row.verdict is None:
                problems.append(f"{column}: a value ({value!r}) without a verdict")
            continue
        problems += _judgement_problems(row, column, judgement)
    return problems


def report_problems(rows: Iterable[ReportRow]) -> list[str]:
    """:func:`row_problems` of every row, each prefixed with the row's section and claim."""
    return [f"[{row.section} | {row.claim}] {problem}"
            for row in rows for problem in row_problems(row)]


__all__ = ["report_problems", "row_problems"]
