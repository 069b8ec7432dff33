"""ACDC volumes to network inputs: z-score, resampling, centre crop/pad, joint augmentation.

Following Baumgartner et al. (2017): each volume is z-scored, resampled to 2.5 × 2.5 × 5 mm
(linear interpolation for images, nearest neighbour for labels) and centre cropped/padded to
116 × 116 × 28. Resampling and cropping are one ``affine_transform`` per volume, so image and
mask share exactly the same output grid.

Augmentation moves image and mask with one coordinate map (rotation in-plane, left-right flip,
x/y translation, elastic deformation), so they stay aligned; noise is added to the image only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DEFAULT_SPACING = (2.5, 2.5, 5.0)
DEFAULT_BOX = (116, 116, 28)


def zscore(volume: np.ndarray) -> np.ndarray:
    """Return ``(volume − mean) / std`` as float32 (a constant volume becomes zeros)."""
    v = np.asarray(volume, dtype=np.float32)
    std = float(v.std())
    return (v - float(v.mean())) / (std if std > 0 else 1.0)


def _check_3(name: str, value, kind) -> tuple:
    value = tuple(value)
    if len(value) != 3 or any(not isinstance(v, kind) and not (kind is float and isinstance(v, int))
                              for v in value) or any(v <= 0 for v in value):
        raise ValueError(f"{name}={value!r}: expected three positive {kind.__name__}s")
    return value


def resample_to_box(volume: np.ndarray, spacing, target_spacing=DEFAULT_SPACING,
                    box=DEFAULT_BOX, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Resample ``volume`` to ``target_spacing`` and centre crop/pad it to ``box`` in one step.

    The volume's centre maps to the box's centre; voxels outside the input get ``cval``.

    Args:
        volume: 3-D array in (X, Y, Z) order.
        spacing: its voxel size in mm (from the NIfTI header).
        target_spacing: output voxel size in mm.
        box: output shape.
        order: interpolation order (1 linear for images, 0 nearest for labels).
        cval: value outside the input.

    Returns:
        Array of shape ``box`` (float32 for order > 0, the input dtype for order 0).
    """
    if volume.ndim != 3:
        raise ValueError(f"volume has shape {volume.shape}; expected 3-D (X, Y, Z)")
    spacing = _check_3("spacing", spacing, float)
    target_spacing = _check_3("target_spacing", target_spacing, float)
    box = _check_3("box", box, int)
    scale = np.array(target_spacing) / np.array(spacing)  # input voxels per output voxel
    # Voxel centres: output index o maps to input coordinate c_in + (o - c_out) * scale.
    c_in = (np.array(volume.shape) - 1) / 2
    c_out = (np.array(box) - 1) / 2
    offset = c_in - c_out * scale
    data = volume if order == 0 else volume.astype(np.float32, copy=False)
    return ndimage.affine_transform(data, scale, offset=offset, output_shape=box, order=order,
                                    mode="constant", cval=cval, prefilter=False)


def preprocess_pair(image: np.ndarray, label: np.ndarray | None, spacing,
                    target_spacing=DEFAULT_SPACING, box=DEFAULT_BOX):
    """Z-score, resample and crop an image and (optionally) its mask onto the same grid.

    The padding value of the image is the volume's minimum after z-scoring (dark, like the
    air around a patient), not zero (which would be its mean brightness).

    Returns:
        ``(image, label)``: float32 and uint8 arrays of shape ``box`` (label None if absent).
    """
    z = zscore(image)
    img = resample_to_box(z, spacing, target_spacing, box, order=1, cval=float(z.min()))
    lab = None
    if label is not None:
        if label.shape != image.shape:
            raise ValueError(f"label shape {label.shape} differs from image shape {image.shape}")
        lab = resample_to_box(label.astype(np.uint8), spacing, target_spacing, box, order=0)
    return img, lab


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random 3-D augmentation (Callanan's thesis list for ACDC).

    Attributes:
        rotation_deg: in-plane rotation drawn from ±this.
        flip_probability: chance of a left-right (x) flip.
        translation_vox: x/y shift drawn from ±this (voxels).
        elastic_alpha: displacement amplitude in voxels (0 disables the elastic part).
        elastic_sigma: smoothness (Gaussian sigma, voxels) of the displacement field.
        noise_std: std of Gaussian noise added to the (z-scored) image.
    """

    rotation_deg: float = 15.0
    flip_probability: float = 0.5
    translation_vox: float = 5.0
    elastic_alpha: float = 3.0
    elastic_sigma: float = 6.0
    noise_std: float = 0.05


def augment_pair(image: np.ndarray, label: np.ndarray | None, seed, settings: Augmentation = Augmentation()):
    """Apply one random draw of ``settings`` to an image and its mask jointly.

    Args:
        image: float (X, Y, Z) volume (a trailing channel axis of size 1 is kept).
        label: integer mask of the same spatial shape, or None.
        seed: anything ``numpy.random.default_rng`` accepts; same seed → same output.
        settings: the ranges.

    Returns:
        ``(image, label)`` with the input shapes and dtypes; the mask is interpolated with
        nearest neighbour on the same coordinates, so structures stay aligned.
    """
    channel = image.ndim == 4
    img = image[..., 0] if channel else image
    if img.ndim != 3 or (label is not None and label.shape[:3] != img.shape):
        raise ValueError(f"image {image.shape} and label "
                         f"{None if label is None else label.shape}: expected matching (X, Y, Z)")
    rng = np.random.default_rng(seed)
    nx, ny, nz = img.shape
    gx, gy, gz = np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32),
                             np.arange(nz, dtype=np.float32), indexing="ij")
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    angle = np.radians(rng.uniform(-settings.rotation_deg, settings.rotation_deg))
    flip = rng.random() < settings.flip_probability
    tx, ty = rng.uniform(-settings.translation_vox, settings.translation_vox, size=2)
    # Output voxel -> input coordinate: undo translation, rotate, optionally mirror x.
    u, v = gx - cx - tx, gy - cy - ty
    cos, sin = np.cos(angle), np.sin(angle)
    xs, ys = cos * u - sin * v, sin * u + cos * v
    if flip:
        xs = -xs
    if settings.elastic_alpha > 0:
        for coords in (xs, ys):
            field = rng.uniform(-1, 1, size=img.shape).astype(np.float32)
            field = ndimage.gaussian_filter(field, sigma=(settings.elastic_sigma,) * 2 + (1.0,))
            peak = float(np.abs(field).max()) or 1.0
            coords += settings.elastic_alpha * field / peak
    coords = np.stack([xs + cx, ys + cy, gz])
    out_img = ndimage.map_coordinates(img.astype(np.float32, copy=False), coords, order=1,
                                      mode="nearest")
    if settings.noise_std > 0:
        out_img = out_img + rng.normal(0, settings.noise_std, size=out_img.shape).astype(np.float32)
    out_lab = None
    if label is not None:
        lab = label[..., 0] if label.ndim == 4 else label
        out_lab = ndimage.map_coordinates(lab, coords, order=0, mode="constant", cval=0)
        out_lab = out_lab.astype(label.dtype).reshape(label.shape)
    if channel:
        out_img = out_img[..., None]
    return out_img.astype(np.float32), out_lab


__all__ = ["DEFAULT_BOX", "DEFAULT_SPACING", "Augmentation", "augment_pair", "preprocess_pair",
           "resample_to_box", "zscore"]
