"""Saving figures (PNG + PDF, atomically) and showing saved figures in a notebook."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..project import files


def save(fig: Any, name: str, folder: str | os.PathLike) -> str:
    """Save ``fig`` as ``<folder>/<name>.png`` and ``.pdf`` (atomically), close it, return ``name``.

    Args:
        fig: a matplotlib Figure (or a seaborn grid: its ``figure`` is saved).
        name: the figure's explicit name (no extension).
        folder: the figures folder.
    """
    import matplotlib.pyplot as plt

    figure = getattr(fig, "figure", fig)  # seaborn's FacetGrid / JointGrid hold a figure
    files.save_figure(figure, name, folder)
    plt.close(figure)
    return name


def show(folder: str | os.PathLike, names: Sequence[str]) -> None:
    """Display saved figures (their PNGs) in a notebook, in order."""
    from IPython.display import Image, display

    for name in names:
        display(Image(filename=str(Path(folder) / f"{name}.png")))


__all__ = ["save", "show"]
