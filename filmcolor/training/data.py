"""Training data: the images of a data folder, unpaired samples of both domains, film-like
damage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..color import split_rgb
from ..config import (
    TrainConfig,
)
from ..errors import DataError, UsageError
from ..io.files import IMAGE_SUFFIXES, load_rgb


def find_images(folder: Path) -> list[Path]:
    """All images under ``folder`` (recursively, sorted), or a clear error when there are none."""
    if not folder.is_dir():
        raise DataError(
            f"data folder '{folder}' does not exist; make it with 'filmcolor extract' or put "
            "images there"
        )
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise DataError(
            f"data folder '{folder}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            "fill it or point data elsewhere",
            fields=("data",),
        )
    return files


def domain_folders(data: Path) -> tuple[Path, Path]:
    """trainA (B&W) and trainB (colour) inside a data folder."""
    return data / "trainA", data / "trainB"


def image_set(path: Path, root: Path) -> str:
    """The set an image belongs to: its top-level folder under ``root`` ('' directly in it)."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""


def set_draws(files: list[Path], root: Path, weights: dict[str, float]) -> np.ndarray:
    """Cumulative draw weights of ``files`` for ``set_weights``: each set's weight (1 if not
    named) spread evenly over its images."""
    sets = [image_set(path, root) for path in files]
    counts: dict[str, int] = {}
    for name in sets:
        counts[name] = counts.get(name, 0) + 1
    share = np.array([float(weights.get(name, 1.0)) / counts[name] for name in sets])
    if share.sum() <= 0:
        raise UsageError(f"set_weights give every set of '{root}' a weight of 0")
    return np.cumsum(share)


class UnpairedFrames(Dataset):
    """Sample ``i`` is one random A image and one random B image, fixed by (seed, i).

    Each item is a dict: ``a`` (1, S, S) luminance, ``b`` (3, S, S) Y'CbCr, both float32
    in [-1, 1], and ``skipped`` (unreadable images passed over), or ``error`` naming the
    unreadable file when ``skip_bad_images`` is off (the loop raises it in the main process).
    """

    def __init__(
        self,
        files_a: list[Path],
        files_b: list[Path],
        cfg: TrainConfig,
        length: int,
        roots: tuple[Path, Path] | None = None,
    ) -> None:
        self.files = (files_a, files_b)
        self.cfg = cfg
        self.length = length
        self.cache: tuple[list[np.ndarray | None], list[np.ndarray | None]] | None = None
        # cfg.set_weights: each image's share of the draws, cumulated (None: all alike).
        self.draws = tuple(
            set_draws(files, root, cfg.set_weights) if cfg.set_weights and roots else None
            for files, root in zip(self.files, roots or (None, None), strict=True)
        )

    def preload(self) -> None:
        """Decode every image once (at ``load_size``) and keep it in memory."""
        cache: list[list[np.ndarray | None]] = [[], []]
        for side, files in enumerate(self.files):
            for path in files:
                try:
                    cache[side].append(load_rgb(path, self.cfg.load_size, upscale=True))
                except OSError:
                    cache[side].append(None)
        self.cache = (cache[0], cache[1])

    def __len__(self) -> int:
        return self.length

    def _image(self, side: int, index: int) -> np.ndarray:
        if self.cache is not None:
            image = self.cache[side][index]
            if image is None:
                raise OSError("not a readable image")
            return image
        return load_rgb(self.files[side][index], self.cfg.load_size, upscale=True)

    def choose(self, side: int, rng: np.random.Generator) -> int:
        """The index of a random image of ``side`` (0: A, 1: B), as ``set_weights`` weighs them."""
        draws = self.draws[side]
        if draws is None:
            return int(rng.integers(len(self.files[side])))
        return min(
            len(draws) - 1, int(np.searchsorted(draws, rng.random() * draws[-1], side="right"))
        )

    def _crop(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = self.cfg.crop_size
        h, w = image.shape[:2]
        top = int(rng.integers(0, h - size + 1))
        left = int(rng.integers(0, w - size + 1))
        crop = image[top : top + size, left : left + size]
        if self.cfg.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(crop)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.cfg.seed, index])
        skipped = 0
        picked: list[np.ndarray] = []
        for side in (0, 1):
            files = self.files[side]
            for _attempt in range(100):
                choice = self.choose(side, rng)
                try:
                    picked.append(self._crop(self._image(side, choice), rng))
                    break
                except OSError as err:
                    if not self.cfg.skip_bad_images:
                        return {
                            "error": f"cannot read image '{files[choice]}' ({err}); "
                            "remove it or set skip_bad_images = true"
                        }
                    skipped += 1
            else:
                return {"error": f"no readable image found in '{files[0].parent}'"}
        luma_a, _ = split_rgb(picked[0])
        luma_b, chroma_b = split_rgb(picked[1])
        b = np.concatenate([luma_b[None], chroma_b], axis=0)
        item = {
            "a": torch.from_numpy(np.ascontiguousarray(luma_a[None])),
            "b": torch.from_numpy(np.ascontiguousarray(b)),
            "skipped": skipped,
        }
        if (
            self.cfg.degrade > 0
        ):  # what the supervised term colours: sometimes a worn version of b's luminance
            worn = degrade_luma(luma_b, rng) if rng.random() < self.cfg.degrade else luma_b
            item["b_luma"] = torch.from_numpy(np.ascontiguousarray(worn[None], dtype=np.float32))
        return item


def degrade_luma(luma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Luminance (H, W) in [-1, 1] as a worn print of old film would show it.

    Each of these is drawn on its own: faded or harsh contrast and a lifted or crushed black
    level, soft focus, film grain (fine or clumped), dust specks and vertical scratches.
    Returns a new float32 array in [-1, 1].
    """
    y = (luma.astype(np.float32) + 1.0) * 0.5
    h, w = y.shape
    if rng.random() < 0.7:  # contrast, black level, gamma of a faded or duped print
        y = np.clip(y * rng.uniform(0.7, 1.15) + rng.uniform(-0.08, 0.12), 0.0, 1.0) ** rng.uniform(
            0.75, 1.35
        )
    if rng.random() < 0.5:  # soft focus
        y = cv2.GaussianBlur(y, (0, 0), rng.uniform(0.4, 1.4))
    if rng.random() < 0.8:  # grain: white noise, sometimes clumped by a blur
        grain = rng.standard_normal((h, w)).astype(np.float32)
        if rng.random() < 0.5:
            grain = cv2.GaussianBlur(grain, (0, 0), rng.uniform(0.6, 1.5))
            grain /= max(float(grain.std()), 1e-6)
        y = y + grain * rng.uniform(0.01, 0.06) * (
            0.5 + y
        )  # stronger in the highlights, as on a print
    if rng.random() < 0.4:  # dust specks, dark or bright
        for _ in range(int(rng.integers(1, 12))):
            cx, cy = int(rng.integers(w)), int(rng.integers(h))
            cv2.circle(y, (cx, cy), int(rng.integers(1, 3)), float(rng.choice([0.02, 0.95])), -1)
    if rng.random() < 0.3:  # vertical scratches
        for _ in range(int(rng.integers(1, 4))):
            x = int(rng.integers(w))
            y[:, x] = np.clip(y[:, x] + rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.4), 0.0, 1.0)
    return np.clip(y, 0.0, 1.0) * 2.0 - 1.0


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    for item in items:
        if "error" in item:
            return {"error": item["error"]}
    batch = {
        "a": torch.stack([i["a"] for i in items]),
        "b": torch.stack([i["b"] for i in items]),
        "skipped": sum(i["skipped"] for i in items),
    }
    if "b_luma" in items[0]:
        batch["b_luma"] = torch.stack([i["b_luma"] for i in items])
    return batch
