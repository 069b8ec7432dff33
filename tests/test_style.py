"""One visual language: every name a figure shows has one readable label and one colour."""

from __future__ import annotations

import pytest

from heatmaploss import plots
from heatmaploss.chapters.shortcut.plan import chapter_groups
from heatmaploss.names import EXPLAINERS, LOSS_GROUPS, TEST_SETS
from heatmaploss.project.profiles import get_profile


def _shown_names() -> list[str]:
    groups = {g.name for p in ("smoke", "quick", "thesis")
              for g in chapter_groups(get_profile(p).shortcut)}
    layers = {f"{e}@conv3" for e in ("hirescam", "gradcam")}
    return sorted({*LOSS_GROUPS, *EXPLAINERS, *TEST_SETS, *groups, *layers})


@pytest.mark.parametrize("name", _shown_names())
def test_every_shown_name_has_a_readable_label_and_a_stable_colour(name):
    text = plots.label(name)
    readable = text.split(" at ")[0]  # what follows " at " is a Keras layer's own name
    assert "_" not in readable and "@" not in text, (name, text)
    assert plots.color(name) == plots.color(name)
    if name in plots.LABELS:  # a base name's label finds its colour too
        assert plots.color(text) == plots.color(name)


def test_no_two_names_share_a_label_and_groups_keep_their_colour_across_chapters():
    for kind in ("groups", "explainers"):  # a group and an explainer may read alike
        names = [n for n in _shown_names() if ("@" in n or n in EXPLAINERS) == (kind ==
                                                                               "explainers")]
        labels = [plots.label(n) for n in names]
        assert len(set(labels)) == len(labels), sorted(labels)
    assert plots.color("cce") == plots.palette(["cce", "heatmap"])["cce"]
    assert plots.palette(["cce"], labelled=True) == {"CCE": plots.color("cce")}
