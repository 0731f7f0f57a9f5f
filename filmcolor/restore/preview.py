"""The before/after preview sheet of a restore."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..color import yuv_to_rgb
from ..io.files import write_image


class PreviewSampler:
    """Keeps a few (before, after) frames spread over the film for the preview sheet."""

    def __init__(self, expected: int | None, count: int = 4, height: int = 240) -> None:
        expected = expected or 1
        self.wanted = sorted({int((i + 0.5) * expected / count) for i in range(count)})
        self.height = height
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.fallback: tuple[np.ndarray, np.ndarray] | None = None

    def offer(self, index: int, y: np.ndarray, uv: np.ndarray, full_range: bool) -> None:
        """Frame ``index``: its Y plane and the U, V planes written (any chroma size)."""
        if index in self.wanted or (index == 0 and not self.pairs):
            h, w = y.shape
            full_uv = cv2.resize(
                uv.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR
            ).transpose(2, 0, 1)
            before = np.stack([y, np.full_like(y, 128), np.full_like(y, 128)])
            after = np.concatenate([y[None], full_uv], axis=0)
            pair = (self._thumb(before, full_range), self._thumb(after, full_range))
            if index in self.wanted:
                self.pairs.append(pair)
            else:
                self.fallback = pair

    def _thumb(self, planes: np.ndarray, full_range: bool) -> np.ndarray:
        rgb = yuv_to_rgb(planes, full_range)
        h, w = rgb.shape[:2]
        width = max(1, round(w * self.height / h))
        return cv2.resize(rgb, (width, self.height), interpolation=cv2.INTER_AREA)

    def write(self, path: Path) -> Path | None:
        pairs = self.pairs or ([self.fallback] if self.fallback else [])
        if not pairs:
            return None
        gap = 8
        rows = [
            np.concatenate([b, np.full((b.shape[0], gap, 3), 255, np.uint8), a], axis=1)
            for b, a in pairs
        ]
        sheet = np.concatenate(
            [
                np.concatenate([r, np.full((gap, r.shape[1], 3), 255, np.uint8)], axis=0)
                for r in rows
            ],
            axis=0,
        )
        return write_image(path, sheet)
