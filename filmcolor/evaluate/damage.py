"""Film damage on clean footage, frame to frame: the ground truth of the repair measures.

:func:`damage_clip` wears a clean gray clip as an old print would: exposure flicker (each
frame's brightness and contrast off by a few percent), gate weave (a small random walk of the
picture, pulled back to its place), grain (new on every frame, stronger in the highlights),
dust and dirt (specks on one frame each) and vertical scratches (lines that stay at one column
for many frames, drifting a little). The same seed gives the same damage. Example::

    worn = damage_clip(gray_frames, np.random.default_rng(0))
    psnr(worn[5], gray_frames[5])
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Damage:
    """How worn the print is (the defaults: a heavily worn 16 mm print)."""

    flicker: float = 0.08
    """Standard deviation of each frame's brightness factor (0.08: +-8 %)."""
    weave: float = 1.2
    """Gate weave in pixels at 720p (scaled with the frame's height)."""
    grain: float = 0.03
    """Grain's standard deviation as a share of the full range, in the mid-tones."""
    dust: float = 6.0
    """Dust specks per frame (mean of a Poisson count)."""
    scratches: int = 2
    """Vertical scratches at a time."""


def damage_clip(
    frames: list[np.ndarray], rng: np.random.Generator, damage: Damage = Damage()
) -> list[np.ndarray]:
    """``frames`` (uint8 (H, W) luminance) worn by ``damage``; new arrays, same count."""
    if not frames:
        return []
    h, w = frames[0].shape
    scale = h / 720.0
    offset = np.zeros(2)
    columns = [_new_scratch(rng, w) for _ in range(damage.scratches)]
    out = []
    for frame in frames:
        y = frame.astype(np.float32) / 255.0
        # weave: a random walk pulled back to the centre
        offset = 0.6 * offset + rng.normal(0.0, damage.weave * scale, 2)
        matrix = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
        y = cv2.warpAffine(y, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
        # flicker: brightness and a little contrast
        factor = 1.0 + rng.normal(0.0, damage.flicker)
        y = np.clip((y - 0.5) * (1.0 + 0.5 * (factor - 1.0)) + 0.5 * factor, 0.0, 1.0)
        # grain
        grain = rng.standard_normal((h, w)).astype(np.float32)
        grain = cv2.GaussianBlur(grain, (0, 0), 0.7)
        grain /= max(float(grain.std()), 1e-6)
        y = y + grain * damage.grain * (0.5 + y)
        # dust: one frame each, dark or bright, a few pixels
        for _ in range(rng.poisson(damage.dust)):
            centre = (int(rng.integers(w)), int(rng.integers(h)))
            radius = max(1, round(rng.uniform(1.0, 3.5) * max(scale, 0.4)))
            cv2.circle(y, centre, radius, float(rng.choice([0.04, 0.95])), -1, cv2.LINE_AA)
        # scratches: steady columns that drift and now and then end, a new one appearing
        for i, (x, sign, strength) in enumerate(columns):
            x = float(np.clip(x + rng.normal(0.0, 0.3), 2, w - 3))
            column = round(x)
            y[:, column] = np.clip(y[:, column] + sign * strength, 0.0, 1.0)
            columns[i] = (x, sign, strength) if rng.random() > 0.03 else _new_scratch(rng, w)
        out.append(np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return out


def _new_scratch(rng: np.random.Generator, width: int) -> tuple[float, int, float]:
    return float(rng.uniform(4, width - 5)), int(rng.choice([-1, 1])), float(rng.uniform(0.12, 0.3))


def flicker(frames: list[np.ndarray], cuts: list[int] | None = None, radius: int = 6) -> float:
    """Luminance flicker: the standard deviation of each frame's mean brightness around its
    slow trend within its shot (a straight line fitted over ``radius`` frames each side, so a
    fade is trend, not flicker)."""
    from ..restore.repair import trend

    means = np.array([float(f.mean()) for f in frames])
    bounds = [0, *sorted(c for c in (cuts or []) if 0 < c < len(frames)), len(frames)]
    residuals = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        shot = means[start:end]
        positions = np.arange(len(shot))
        for i in range(len(shot)):
            lo, hi = max(0, i - radius), min(len(shot), i + radius + 1)
            if hi - lo >= 3:
                level = trend(shot[lo:hi], positions[lo:hi], i, robust=False)
                residuals.append(shot[i] - level)
    return float(np.sqrt(np.mean(np.square(residuals)))) if residuals else 0.0
