"""The columns of the evaluation tables: each a measure with the kinds of set it applies to, in a
registry that ``pipelines/evaluate.py`` reads. A new metric is a function in metrics.py and one
``@measure`` here; every table that applies gets its column, the ground-truth row included.

Kinds of set: ``photos`` (single pictures with their truth), ``film`` (frames of one clip with
their truth, cuts known), ``bw`` (a real B&W film: no colour truth; the input is the reference).

    row = measure_all("film", Sample(out, truth=truth, cuts=cuts))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .metrics import cdc, colourfulness, psnr, sequence_psnr, ssim, warp_error


@dataclass
class Sample:
    """What a model made of one set, and what to compare it with."""

    out: list[np.ndarray]
    """The model's frames or pictures, RGB uint8."""
    truth: list[np.ndarray] | None = None
    """The colour originals (ground-truth sets)."""
    source: list[np.ndarray] | None = None
    """The B&W input as RGB (real films: the flow guide)."""
    cuts: list[int] = field(default_factory=list)
    """Frames where a shot starts (pairs across them are left out of CDC)."""
    luma: tuple[np.ndarray, np.ndarray] | None = None
    """(input, output) luminance planes of a real film (Y-PSNR)."""


@dataclass(frozen=True)
class Measure:
    """One column."""

    name: str
    kinds: tuple[str, ...]
    of: Callable[[Sample], float]
    """Its value for a sample."""
    of_truth: Callable[[Sample], float] | None = None
    """Its value in the ground-truth row (the truth as the output), or None for '–'."""


MEASURES: dict[str, Measure] = {}
"""Column name -> measure, in the order of the tables."""


def measure(name: str, *kinds: str, truth: Callable[[Sample], float] | None = None) -> Callable:
    """Register a column (a decorator of its function of a :class:`Sample`)."""

    def add(of: Callable[[Sample], float]) -> Callable[[Sample], float]:
        MEASURES[name] = Measure(name, kinds, of, truth)
        return of

    return add


def columns(kind: str) -> list[str]:
    """The columns of a table of sets of ``kind``."""
    return [name for name, m in MEASURES.items() if kind in m.kinds]


def measure_all(kind: str, sample: Sample) -> dict[str, float]:
    """Every column of ``kind`` for ``sample`` (a row of the table)."""
    return {name: MEASURES[name].of(sample) for name in columns(kind)}


def truth_row(kind: str, sample: Sample) -> dict[str, float]:
    """The ground-truth row: the truth measured as if it were the output."""
    return {
        name: m.of_truth(sample)
        for name in columns(kind)
        if (m := MEASURES[name]).of_truth is not None
    }


def _pairs(sample: Sample) -> zip:
    assert sample.truth is not None, "a ground-truth measure"
    return zip(sample.out, sample.truth, strict=True)


def _colour(frames: list[np.ndarray]) -> float:
    return float(np.mean([colourfulness(f) for f in frames]))


def _truth(sample: Sample) -> list[np.ndarray]:
    assert sample.truth is not None
    return sample.truth


measure("PSNR", "photos", "film")(lambda s: float(np.mean([psnr(o, t) for o, t in _pairs(s)])))
measure("PSNR-seq", "photos", "film")(lambda s: sequence_psnr(s.out, _truth(s)))
measure("SSIM", "photos", "film")(lambda s: float(np.mean([ssim(o, t) for o, t in _pairs(s)])))
measure("colour", "photos", "film", "bw", truth=lambda s: _colour(_truth(s)))(
    lambda s: _colour(s.out)
)
measure("colour/GT", "photos", "film", truth=lambda s: 1.0)(
    lambda s: _colour(s.out) / max(1e-6, _colour(_truth(s)))
)
measure("CDC", "film", "bw", truth=lambda s: cdc(_truth(s), cuts=s.cuts))(
    lambda s: cdc(s.out, cuts=s.cuts)
)
measure("CDC/GT", "film", truth=lambda s: 1.0)(
    lambda s: cdc(s.out, cuts=s.cuts) / max(1e-9, cdc(_truth(s), cuts=s.cuts))
)
measure("warp", "film", "bw", truth=lambda s: warp_error(_truth(s)))(
    lambda s: warp_error(s.out, guide=s.truth if s.truth is not None else s.source)
)
measure("CDC-c", "film", "bw", truth=lambda s: cdc(_truth(s), chroma=True, cuts=s.cuts))(
    lambda s: cdc(s.out, chroma=True, cuts=s.cuts)
)
measure("warp-c", "film", "bw", truth=lambda s: warp_error(_truth(s), chroma=True))(
    lambda s: warp_error(s.out, guide=s.truth if s.truth is not None else s.source, chroma=True)
)


@measure("Y-PSNR", "bw")
def _luma_kept(sample: Sample) -> float:
    """The output's luminance against the input's (100: identical)."""
    assert sample.luma is not None, "a real film's measure"
    return psnr(*sample.luma)
