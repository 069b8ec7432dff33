"""What the thesis's VGG16 can see of the sex marker at ``block5_conv3`` (chapter 4).

The thesis's network pools with ``valid`` padding: at 105 × 135, ``block4_pool`` drops row 12 of
``block4_conv3`` (its cells never reach ``block5_conv3``, nor the logits), and the 6 × 8
``block5_conv3`` map is upsampled to the image, so each of its rows covers 17.5 image rows. This
module measures, with input gradients of random images (the receptive fields do not depend on
the weights being ImageNet's), how strongly each image row can change each ``block5_conv3``
row, and says what that means for the marker in rows 95–103.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...synthetic.render import MARKER_SIZE, SEX_MARKER_CORNER


def row_visibility(n_inputs: int = 4, seed: int = 0) -> pd.DataFrame:
    """Per image row: the sensitivity of ``block5_conv3`` to it, relative to the most visible
    row, and the ``block5_conv3`` row that sees it most.

    Args:
        n_inputs: random images whose gradients are taken.
        seed: their seed.

    Returns:
        One row per image row: ``image_row``, ``relative_sensitivity`` (0 = invisible),
        ``strongest_map_row``, ``marker`` (True in the sex marker's rows).
    """
    from ... import models

    vgg = models.build_model("vgg16", weights=None, seed=seed, pooling="valid")
    seen = models.input_rows_seen(vgg.backbone, n_inputs=n_inputs, seed=seed)
    strength = seen.max(axis=1)
    top, _ = SEX_MARKER_CORNER
    rows = np.arange(seen.shape[0])
    return pd.DataFrame({"image_row": rows, "relative_sensitivity": strength / strength.max(),
                         "strongest_map_row": seen.argmax(axis=1),
                         "marker": (rows >= top) & (rows < top + MARKER_SIZE)})


def marker_statement(table: pd.DataFrame, map_rows: int = 6) -> str:
    """What the visibility table means for the thesis's sex-marker result, in words."""
    marker = table[table["marker"]]
    invisible = table.loc[table["relative_sensitivity"] == 0, "image_row"].tolist()
    centre = table["relative_sensitivity"].iloc[len(table) // 3: 2 * len(table) // 3].median()
    cell_rows = len(table) / map_rows
    low, high = marker["relative_sensitivity"].min(), marker["relative_sensitivity"].max()
    owners = sorted(set(marker["strongest_map_row"]))
    span = (min(owners) * cell_rows, (max(owners) + 1) * cell_rows)
    top, bottom = marker["image_row"].min(), marker["image_row"].max()
    covered = max(0.0, min(span[1], bottom + 1) - max(span[0], top)) / (bottom + 1 - top)
    where = ("none of them a marker row" if covered == 0
             else f"holding {covered:.0%} of the marker's rows")
    return (
        f"{'No image row is invisible' if not invisible else f'Image rows {invisible} are invisible'}"
        f" to block5_conv3, but the sex marker's rows {top}–{bottom} change it with "
        f"{low:.0%}–{high:.0%} of the most visible row's sensitivity (central rows: {centre:.0%}),"
        f" most strongly through block5_conv3 row{'s' if len(owners) > 1 else ''} "
        f"{', '.join(map(str, owners))} of {map_rows} — image rows {span[0]:.1f}–{span[1]:.1f} "
        f"once the map is upsampled, {where}. The thesis's VGG16 sees the marker weakly, and a "
        f"HiResCAM map at block5_conv3 places marker evidence "
        f"{'above the marker, so a mass-on-marker score undercounts it' if covered < 0.5 else 'roughly on it'}.")


__all__ = ["marker_statement", "row_visibility"]
