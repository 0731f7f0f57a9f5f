"""One colour-space convention for training and inference: luminance in, chroma out.

The generator sees luminance Y' and predicts chroma (Cb, Cr) of BT.601 full-range YCbCr.
Both are scaled to [-1, 1]. A colour frame is its predicted chroma on the input's own
luminance, so restore never changes the brightness or the detail of the film. Example::

    luma, chroma = split_rgb(rgb)             # (H, W) and (2, H, W) float32 in [-1, 1]
    rgb_again = merge_rgb(luma, chroma)       # uint8 (H, W, 3)
    u, v = chroma_to_planes(chroma, full_range=False)   # for a limited-range video
"""

from __future__ import annotations

import cv2
import numpy as np

# BT.601 luma weights and the full-range YCbCr matrix (JFIF).
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
RGB_TO_YCC = np.array(
    [
        [_KR, _KG, _KB],
        [-0.5 * _KR / (1 - _KB), -0.5 * _KG / (1 - _KB), 0.5],
        [0.5, -0.5 * _KG / (1 - _KR), -0.5 * _KB / (1 - _KR)],
    ],
    dtype=np.float32,
)
YCC_TO_RGB = np.linalg.inv(RGB_TO_YCC).astype(np.float32)

# Limited ("tv") range: Y 16..235, Cb/Cr 16..240 around 128.
_LIMITED_Y = (16.0, 219.0)
_LIMITED_C = 112.0
_FULL_C = 127.5


def split_rgb(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split RGB into model luminance and chroma.

    Args:
        rgb: uint8 (H, W, 3) or (N, H, W, 3).

    Returns:
        luma (..., H, W) and chroma (..., 2, H, W), float32 in [-1, 1].
    """
    x = rgb.astype(np.float32) / 255.0
    ycc = x @ RGB_TO_YCC.T
    luma = ycc[..., 0] * 2.0 - 1.0
    chroma = np.moveaxis(ycc[..., 1:] * 2.0, -1, -3)
    return luma, np.clip(chroma, -1.0, 1.0)


def merge_rgb(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_rgb`: uint8 RGB from luminance and chroma in [-1, 1]."""
    y = (luma + 1.0) * 0.5
    cbcr = np.moveaxis(chroma, -3, -1) * 0.5
    ycc = np.concatenate([y[..., None], cbcr], axis=-1)
    rgb = ycc @ YCC_TO_RGB.T
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


# How much each of R, G, B moves per unit of model chroma (Cb, Cr in [-1, 1] are half that in
# YCbCr).
CHROMA_TO_RGB = (YCC_TO_RGB[:, 1:] * 0.5).astype(np.float32)


def fit_gamut(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Shrink chroma toward gray, per pixel, until its RGB colour fits in [0, 1] on this luminance.

    A black or a white pixel can hold no colour, a dark one only a little: chroma beyond that
    would be clipped by the display, which shifts both the hue and the brightness. Scaling it
    down instead keeps the hue and leaves the luminance exactly as it was. Colours that fit are
    unchanged; a gray frame (black, white) stays exactly gray (title cards: :func:`fit_colour`).

    Args:
        luma: float32 (..., H, W) in [-1, 1].
        chroma: float32 (..., 2, H, W) in [-1, 1], the same leading shape.

    Returns:
        float32 chroma of the same shape.
    """
    y = (np.asarray(luma, np.float32) + 1.0) * 0.5
    headroom = 1.0 - y
    cb, cr = chroma[..., 0, :, :], chroma[..., 1, :, :]
    scale = np.ones_like(y)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k_cb, k_cr in CHROMA_TO_RGB:
            d = k_cb * cb + k_cr * cr  # this channel's offset from gray
            # room toward the edge the offset moves to, over the offset (nan for 0/0: fmin skips it)
            np.fmin(scale, np.where(d > 0, headroom, y) / np.abs(d), out=scale)
    return (chroma * scale[..., None, :, :]).astype(np.float32, copy=False)


# A title card (light text on black) or a fade is a frame almost all black: it keeps no colour.
# Its colour fades out over a ramp of the black share, so a dark scene near the edge cannot
# flicker between colour and gray from one frame to the next.
TITLE_BLACK = 0.08
"""Luminance (0..1) counted as black."""
TITLE_RAMP = (0.85, 0.95)
"""Share of black pixels: full colour at or below the first, none at or above the second."""


def title_fade(luma: np.ndarray) -> np.ndarray:
    """How much colour each frame keeps (1 = all, 0 = none) by its share of black pixels.

    Args:
        luma: float32 (..., H, W) in [-1, 1].

    Returns:
        float32 (...,) in [0, 1]: 0 for a title card or a black frame, 1 for a normal picture.
    """
    y = (np.asarray(luma, np.float32) + 1.0) * 0.5
    black = (y < TITLE_BLACK).mean(axis=(-2, -1))
    low, high = TITLE_RAMP
    return np.clip((high - black) / (high - low), 0.0, 1.0).astype(np.float32)


# A frame faded toward black (a fade-in, a fade-out, an underexposed shot) is a picture with
# all its light scaled by some k < 1, and so is its true chroma. The generator cannot see k:
# its first instance norm makes it blind to the brightness and contrast of its input, so it
# paints a faded frame as strongly as the full picture (measured: the fade-in of the cuts
# video got chroma 2x to 7x its truth). Its light is read off the frame's brightest parts.
EXPOSURE_PERCENTILE = 98.0
"""Percentile of a frame's luminance taken as its highlights."""
EXPOSURE_REF = 160.0 / 255.0
"""Highlights (luminance 0..1) at or above which a frame keeps all its colour: the 5th
percentile of the highlights of the default model's colour training photos (their median is
225/255), so almost every picture it learnt from counts as fully lit."""


def exposure_fade(luma: np.ndarray) -> np.ndarray:
    """How much colour each frame keeps (1 = all) by how far it is faded toward black.

    The frame's highlights (the ``EXPOSURE_PERCENTILE`` luminance of every second row and
    column) over ``EXPOSURE_REF``, capped at 1: a frame at half that light keeps half its
    colour, as a picture dimmed to half has half its chroma. It follows a fade smoothly, frame by
    frame, with no threshold to
    flicker across.

    Args:
        luma: float32 (..., H, W) in [-1, 1].

    Returns:
        float32 (...,) in [0, 1].
    """
    # every second row and column: the same read of the highlights at a quarter of the cost
    # (restore does this for every frame)
    y = (np.asarray(luma, np.float32)[..., ::2, ::2] + 1.0) * 0.5
    flat = y.reshape(*y.shape[:-2], -1)
    highlights = np.percentile(flat, EXPOSURE_PERCENTILE, axis=-1)
    return np.clip(highlights / EXPOSURE_REF, 0.0, 1.0).astype(np.float32)


def fit_colour(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """The colour a frame shows: :func:`fit_gamut` per pixel, then none on title cards and
    black frames (:func:`title_fade`), whose text the model would otherwise tint, and less on
    frames faded toward black (:func:`exposure_fade`).

    Args and returns as :func:`fit_gamut`.
    """
    fade = title_fade(luma) * exposure_fade(luma)
    fitted = fit_gamut(luma, chroma)
    if np.all(fade == 1.0):
        return fitted
    return (fitted * fade[..., None, None, None]).astype(np.float32, copy=False)


def luma_from_plane(y_plane: np.ndarray, full_range: bool) -> np.ndarray:
    """A video's Y plane (uint8) as model luminance in [-1, 1]."""
    y = y_plane.astype(np.float32)
    if full_range:
        y = y / 255.0
    else:
        y = (y - _LIMITED_Y[0]) / _LIMITED_Y[1]
    return np.clip(y, 0.0, 1.0) * 2.0 - 1.0


def chroma_to_planes(chroma: np.ndarray, full_range: bool) -> np.ndarray:
    """Model chroma (..., 2, H, W) in [-1, 1] as a video's U and V planes (uint8)."""
    scale = _FULL_C if full_range else _LIMITED_C
    planes = 128.0 + np.clip(chroma, -1.0, 1.0) * scale + 0.5
    return np.clip(planes, 0, 255).astype(np.uint8)


def planes_to_chroma(uv: np.ndarray, full_range: bool) -> np.ndarray:
    """A video's U and V planes (uint8, (..., 2, H, W)) as model chroma in [-1, 1]."""
    scale = _FULL_C if full_range else _LIMITED_C
    return np.clip((uv.astype(np.float32) - 128.0) / scale, -1.0, 1.0)


def yuv_to_rgb(planes: np.ndarray, full_range: bool) -> np.ndarray:
    """Planar Y, U, V (3, H, W) uint8 of a video as RGB (H, W, 3) uint8 (for previews)."""
    return merge_rgb(
        luma_from_plane(planes[0], full_range), planes_to_chroma(planes[1:], full_range)
    )


def rgb_to_yuv(rgb: np.ndarray, full_range: bool) -> np.ndarray:
    """RGB (H, W, 3) uint8 as planar Y, U, V (3, H, W) uint8 in the given range."""
    luma, chroma = split_rgb(rgb)
    y = (luma + 1.0) * 0.5
    y = y * 255.0 if full_range else y * _LIMITED_Y[1] + _LIMITED_Y[0]
    y_plane = np.clip(y + 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([y_plane[None], chroma_to_planes(chroma, full_range)], axis=0)


def colour_spread(frames: list[np.ndarray]) -> float:
    """How much colour a film has that its brightness does not explain (0..255 chroma scale).

    For each frame, pixels are grouped by brightness (32 bins) and the spread of chroma (Cb, Cr)
    within each group is measured: the mean of it over the frame, then the median over frames.
    A B&W film has no chroma, and a tinted, toned or sepia film has chroma that is a function of
    brightness (whatever the function): both give ~0. A colour film, where things of one
    brightness have many colours, gives a lot.
    A colour film measures 13-17, B&W and toned films 0-0.6 (:data:`COLOUR_SPREAD`).
    """
    values = []
    for frame in frames:
        small = cv2.resize(
            frame, (min(160, frame.shape[1]), min(90, frame.shape[0])), interpolation=cv2.INTER_AREA
        )
        luma, chroma = split_rgb(small)
        bins = np.clip(((luma.reshape(-1) + 1) * 16).astype(int), 0, 31)
        c = chroma.reshape(2, -1).astype(np.float64) * 127.5
        count = np.bincount(bins, minlength=32)
        variance = 0.0
        for channel in c:
            mean = np.bincount(bins, channel, 32) / np.maximum(count, 1)
            variance += float(((channel - mean[bins]) ** 2).sum())
        values.append(float(np.sqrt(variance / max(1, bins.size))))
    return float(np.median(values)) if values else 0.0


COLOUR_SPREAD = 2.5
"""The colour spread above which a film is in colour (the default of extract's
``saturation_threshold``; measured: B&W and toned/sepia films and photos 0-0.6, colour 13-17)."""
