"""How well repair works: clean footage worn by the damage model and repaired, and real film.

:func:`score_clip` wears a clean gray clip (:func:`~filmcolor.evaluate.damage.damage_clip`),
repairs it and compares both with the clean clip: luminance PSNR and SSIM, and the flicker
measure; it also repairs the clean clip itself (repair must leave clean footage alone).
:func:`score_film` repairs a real old film and counts what changed: flicker, dust specks and
scratch columns, and the film's own flashes (frame-to-frame brightness jumps of more than
:data:`FLASH` that the repaired film still has). ``pipelines/evaluate.py --repair`` prints both
as tables. Example::

    score = score_clip("REDS", frames, DEFAULT_REPAIRS)
    print(score.psnr_repaired - score.psnr_worn, score.flicker_repaired / score.flicker_worn)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..config import RepairConfig
from ..restore.repair import Repairer
from .damage import Damage, damage_clip, flicker
from .metrics import ssim

FLASH = 0.25
"""A frame-to-frame change of the mean brightness by more than this share is a flash or a
cut, the film's own: a repair keeps it."""


@dataclass(frozen=True)
class ClipScore:
    """A clean clip worn and repaired."""

    name: str
    frames: int
    steps: tuple[str, ...]
    psnr_worn: float
    psnr_repaired: float
    ssim_worn: float
    ssim_repaired: float
    flicker_clean: float
    flicker_worn: float
    flicker_repaired: float
    psnr_clean_kept: float
    """The clean clip repaired, against itself (how little repair changes clean footage)."""
    ms_per_frame: float


@dataclass(frozen=True)
class FilmScore:
    """A real old film repaired."""

    name: str
    frames: int
    flicker_before: float
    flicker_after: float
    specks_per_frame: float
    scratches_per_frame: float
    flashes_before: int
    flashes_after: int
    ms_per_frame: float


def repair_frames(frames: list[np.ndarray], steps: tuple[str, ...]) -> tuple[list, Repairer]:
    """``frames`` (uint8 luminance) through a :class:`Repairer` of ``steps``."""
    repairer = Repairer(RepairConfig(steps=steps))
    out: list[np.ndarray] = []
    for y in frames:
        out += repairer.push(y)
    out += repairer.finish()
    return out, repairer


def _pooled_psnr(frames: list[np.ndarray], truth: list[np.ndarray]) -> float:
    mse = float(
        np.mean(
            [np.mean((a.astype(np.float32) - b) ** 2) for a, b in zip(frames, truth, strict=True)]
        )
    )
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def _mean_ssim(frames: list[np.ndarray], truth: list[np.ndarray]) -> float:
    return float(np.mean([ssim(a, b) for a, b in zip(frames, truth, strict=True)]))


def score_clip(
    name: str,
    clean: list[np.ndarray],
    steps: tuple[str, ...],
    damage: Damage | None = None,
    seed: int = 0,
) -> ClipScore:
    """Wear ``clean`` by ``damage`` (seeded; by default :class:`Damage`'s), repair it with
    ``steps``, compare with ``clean``."""
    worn = damage_clip(clean, np.random.default_rng(seed), damage or Damage())
    started = time.perf_counter()
    repaired, repairer = repair_frames(worn, steps)
    seconds = time.perf_counter() - started
    kept, _ = repair_frames(clean, steps)
    return ClipScore(
        name=name,
        frames=len(clean),
        steps=steps,
        psnr_worn=_pooled_psnr(worn, clean),
        psnr_repaired=_pooled_psnr(repaired, clean),
        ssim_worn=_mean_ssim(worn, clean),
        ssim_repaired=_mean_ssim(repaired, clean),
        flicker_clean=flicker(clean, repairer.cuts),  # one set of shots for all three
        flicker_worn=flicker(worn, repairer.cuts),
        flicker_repaired=flicker(repaired, repairer.cuts),
        psnr_clean_kept=_pooled_psnr(kept, clean),
        ms_per_frame=1000.0 * seconds / max(1, len(clean)),
    )


def flashes(frames: list[np.ndarray]) -> int:
    """Frame-to-frame changes of the mean brightness by more than :data:`FLASH`."""
    means = np.array([float(f.mean()) + 1.0 for f in frames])
    return int(np.sum(np.abs(np.diff(np.log(means))) > np.log1p(FLASH)))


def score_film(name: str, frames: list[np.ndarray], steps: tuple[str, ...]) -> FilmScore:
    """Repair a real film's luminance frames and count what changed."""
    started = time.perf_counter()
    repaired, repairer = repair_frames(frames, steps)
    seconds = time.perf_counter() - started
    count = max(1, len(frames))
    return FilmScore(
        name=name,
        frames=len(frames),
        flicker_before=flicker(frames, repairer.cuts),
        flicker_after=flicker(repaired, repairer.cuts),
        specks_per_frame=repairer.specks / count,
        scratches_per_frame=repairer.scratch_columns / count,
        flashes_before=flashes(frames),
        flashes_after=flashes(repaired),
        ms_per_frame=1000.0 * seconds / count,
    )
