"""Figures: one palette and one label per name, seaborn statistical figures, saving (no TF).

* :mod:`.style` — :func:`color`, :func:`label`, :func:`palette` (one mapping for every
  figure), :func:`source_title` (tags fixture data), :func:`theme` (the seaborn style);
* :mod:`.groups` — figures comparing groups of models: :func:`overlap_histogram`,
  :func:`group_distributions`, :func:`per_class_plot`, :func:`model_strip`;
* :mod:`.images` — :func:`colorbar`, the one colour bar of every heatmap figure;
* :mod:`.files` — :func:`save` (PNG + PDF, atomically) and :func:`show` (in a notebook).

    fig = plots.overlap_histogram({"cce": cce_scores, "heatmap": hm_scores}, title="...")
    plots.save(fig, "exp1_controlled_hirescam_heart_overlap_hist", out.figures)
"""

from .files import save, show
from .groups import group_distributions, model_strip, overlap_histogram, per_class_plot
from .images import colorbar
from .style import LABELS, PALETTE, color, label, palette, source_title, theme

__all__ = ["LABELS", "PALETTE", "color", "colorbar", "group_distributions", "label",
           "model_strip", "overlap_histogram", "palette", "per_class_plot", "save", "show",
           "source_title", "theme"]
