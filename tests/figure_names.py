"""Figure-name patterns of the chapters (``FIGURES`` of each chapter's figures module).

A pattern is a figure name in which ``{a,b}`` stands for one of a or b and ``<protocol>`` for a
protocol; :func:`matches` says whether a written figure's name fits one.
"""

from __future__ import annotations

import re

from heatmaploss.chapters.experiments import figures as experiments
from heatmaploss.chapters.published_results import figures as published_results
from heatmaploss.chapters.synthetic_data import figures as synthetic_data

#: Chapters 1-4: every figure they write must fit one of these, and the README lists them.
FIGURES = {**synthetic_data.FIGURES, **published_results.FIGURES, **experiments.FIGURES}
#: Name prefixes of the figures of chapters 1-4.
PREFIXES = ("synthetic_", "thesis_", "exp1_", "exp2_", "exp{1,2}_")
_PLACEHOLDERS = {"<protocol>": "(thesis|controlled)"}


def regex(template: str) -> re.Pattern:
    """The regular expression of a figure-name pattern."""
    text = re.escape(template)
    for placeholder, alternatives in _PLACEHOLDERS.items():
        text = text.replace(re.escape(placeholder), alternatives)
    text = re.sub(r"\\\{([^}]*)\\\}", lambda m: "(" + m.group(1).replace(",", "|") + ")", text)
    return re.compile(text + r"\Z")


def matches(name: str, templates=FIGURES) -> bool:
    """True when ``name`` fits one of ``templates``."""
    return any(regex(t).match(name) for t in templates)
