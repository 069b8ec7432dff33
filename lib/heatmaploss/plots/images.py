"""Image figures (maps, overlays, slices): one colour bar that says what the colours mean."""

from __future__ import annotations

from typing import Any


def colorbar(fig: Any, mappable: Any, axes: Any, label: str, *, fraction: float = 0.025,
             pad: float = 0.01, fontsize: float = 8) -> Any:
    """Add one colour bar for a grid of images drawn with the same colour scale.

    Every heatmap figure of the project has one: without it a reader cannot tell a faint map
    from a strong one, or what unit the colours are in.

    Args:
        fig: the Figure.
        mappable: an image drawn on the shared scale (``ax.imshow(..., vmin=, vmax=)``).
        axes: the axes (one or an array) the bar sits beside.
        label: what the colours measure, with its unit.
        fraction, pad: size of and gap to the bar (matplotlib's ``colorbar`` arguments).
        fontsize: size of the label and the ticks.

    Returns:
        The matplotlib Colorbar.
    """
    bar = fig.colorbar(mappable, ax=axes, fraction=fraction, pad=pad)
    bar.set_label(label, fontsize=fontsize)
    bar.ax.tick_params(labelsize=fontsize)
    return bar


__all__ = ["colorbar"]
