"""Colour strength: a gain on the generator's chroma, calibrated on colour photographs.

A generator trained with the supervised L1 chroma term paints what it is sure of and pulls
the colours it is unsure of toward their average: its chroma tends to point the right way
but falls short in strength. ``calibrate_model``
measures that on colour photographs made gray: it colorizes them once, then finds by
bisection the factor on the chroma at which the results' mean colourfulness (Hasler &
Suesstrunk) is ``target`` times the photographs' own, with each pixel's colour fitted into
what its luminance can show, as restore does. The factor goes into the model's contract
(``chroma_gain``, with how it was found under ``calibration``) and into its int8 sibling's
when there is one; :class:`~filmcolor.restore.colorizer.Colorizer` applies it, and restore's
``--saturation`` scales it further. Calibrate on the training set's colour side (or any
colour photos that are not the ones you evaluate on). Needs the ``onnx`` package
(``pip install 'filmcolor[train]'``), not torch. Example::

    report = calibrate_model(Path("films.onnx"), [Path("data/films/trainB")], target=0.6)
    print(report.gain, report.ratio_before, report.psnr_gray, report.psnr_after)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..color import merge_rgb, split_rgb
from ..errors import UsageError
from ..evaluate.metrics import colourfulness, psnr
from ..io.files import IMAGE_SUFFIXES, load_rgb
from ..restore.colorizer import Colorizer
from .contract import int8_path, update_contract

log = logging.getLogger(__name__)

GAIN_RANGE = (0.05, 8.0)
"""The gains searched."""


@dataclass(frozen=True)
class CalibrationReport:
    """What a calibration found and wrote."""

    gain: float
    target: float
    photos: int
    ratio_before: float
    """Mean colourfulness of the results over the photos' own, at the model's previous gain."""
    ratio_after: float
    psnr_gray: float
    """PSNR of the gray photos against the colour ones (the baseline a colorizer must beat)."""
    psnr_before: float
    psnr_after: float
    written: list[Path]


def photo_paths(sources: list[Path], limit: int) -> list[Path]:
    """Up to ``limit`` picture files from files and folders (recursive), spread evenly."""
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found.extend(sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif source.is_file():
            found.append(source)
        else:
            raise UsageError(
                f"calibration pictures '{source}' do not exist; check the photos path",
                fields=("photos",),
            )
    if not found:
        raise UsageError(
            f"no pictures (PNG/JPEG) in {', '.join(map(str, sources))}; give colour pictures "
            "with photos",
            fields=("photos",),
        )
    if len(found) > limit:
        found = [found[int(i * len(found) / limit)] for i in range(limit)]
    return found


def _load(path: Path, short_side: int) -> np.ndarray | None:
    try:
        return load_rgb(path, short_side)
    except OSError:
        return None


class _Measure:
    """The photos colorized once; their colourfulness and PSNR at any gain."""

    def __init__(self, engine: Colorizer, photos: list[np.ndarray]) -> None:
        self.engine = engine
        self.items = []
        for rgb in photos:
            luma, _ = split_rgb(rgb[None])
            small = engine.shrink(luma[0])
            raw = engine.run(small[None])[0]
            self.items.append((rgb, luma, small, raw))
        self.truth = float(np.mean([colourfulness(rgb) for rgb, *_ in self.items]))

    def results(self, gain: float) -> list[np.ndarray]:
        out = []
        for rgb, luma, small, raw in self.items:
            chroma = self.engine.fit(small, np.clip(raw * np.float32(gain), -1.0, 1.0))
            full = self.engine.enlarge(chroma, *rgb.shape[:2])
            out.append(merge_rgb(luma, full[None])[0])
        return out

    def gray(self, index: int) -> np.ndarray:
        """Photo ``index`` made gray: its own luminance, no colour."""
        _, luma, *_ = self.items[index]
        return merge_rgb(luma, np.zeros((1, 2, *luma.shape[1:]), np.float32))[0]

    def ratio(self, gain: float) -> float:
        """Mean colourfulness of the results over the photos' own."""
        return self.scores(gain)[0]

    def scores(self, gain: float, with_psnr: bool = False) -> tuple[float, float]:
        """(colourfulness ratio, mean PSNR against the photos, or nan) from one pass of results."""
        out = self.results(gain)
        ratio = float(np.mean([colourfulness(o) for o in out])) / max(self.truth, 1e-9)
        if not with_psnr:
            return ratio, float("nan")
        return ratio, float(
            np.mean([psnr(o, rgb) for o, (rgb, *_) in zip(out, self.items, strict=True)])
        )


def find_gain(ratio_of: Callable[[float], float], target: float, iterations: int = 24) -> float:
    """The gain at which ``ratio_of(gain)`` (non-decreasing) reaches ``target``, by bisection."""
    lo, hi = GAIN_RANGE
    if ratio_of(hi) < target:
        raise UsageError(
            f"the model cannot reach {target:.2f} of the photos' colourfulness even at gain {hi}; "
            "use a lower target or a model that paints more colour",
            fields=("target",),
        )
    for _ in range(iterations):
        mid = (lo * hi) ** 0.5  # geometric: gains are ratios
        if ratio_of(mid) < target:
            lo = mid
        else:
            hi = mid
    return round(hi, 3)


def write_gain(model: Path, gain: float, record: dict[str, object]) -> None:
    """Set ``chroma_gain`` (and its record) in the contract of the ONNX file ``model``,
    atomically."""
    update_contract(model, chroma_gain=gain, calibration=record)


def calibrate_model(
    model: Path, photos: list[Path], target: float = 0.6, limit: int = 200
) -> CalibrationReport:
    """Find the chroma gain that gives ``target`` x the photos' colourfulness; write it into
    ``model``.

    Raises:
        UsageError: no readable photo, a bad target, or a target the model cannot reach.
        EngineError: the model cannot be loaded.
        ExportError: the onnx package is missing.
    """
    if not 0.0 < target <= 2.0:
        raise UsageError(
            f"target must be above 0 and at most 2 (a share of the photos' colourfulness), got "
            f"{target}",
            fields=("target",),
        )
    engine = Colorizer(model, device="cpu", precision="fp32", gain=1.0)  # the network's own chroma
    paths = photo_paths(photos, limit)
    pictures = [p for p in (_load(path, engine.working_size) for path in paths) if p is not None]
    if not pictures:
        raise UsageError(
            f"none of the {len(paths)} pictures in {', '.join(map(str, photos))} could be read"
        )
    colour = [
        p for p in pictures if colourfulness(p) > 1.0
    ]  # gray pictures say nothing about strength
    if not colour:
        raise UsageError(
            "the calibration pictures have no colour; give colour pictures with photos",
            fields=("photos",),
        )
    before = engine.contract.chroma_gain
    measure = _Measure(engine, colour)
    gain = find_gain(measure.ratio, target)
    gray = float(np.mean([psnr(measure.gray(i), rgb) for i, (rgb, *_) in enumerate(measure.items)]))
    ratio_before, psnr_before = measure.scores(before, with_psnr=True)
    ratio_after, psnr_after = measure.scores(gain, with_psnr=True)
    ratio_one = ratio_before if before == 1.0 else measure.ratio(1.0)
    record = {"target": target, "photos": len(colour), "ratio_at_gain_1": round(ratio_one, 4)}
    written = [model] + ([int8_path(model)] if int8_path(model).is_file() else [])
    for path in written:
        write_gain(path, gain, record)
    report = CalibrationReport(
        gain=gain,
        target=target,
        photos=len(colour),
        ratio_before=ratio_before,
        ratio_after=ratio_after,
        psnr_gray=gray,
        psnr_before=psnr_before,
        psnr_after=psnr_after,
        written=written,
    )
    log.info(
        "chroma gain %.3f (was %.3f) written to %s: colourfulness %.2f -> %.2f of the %d photos' "
        "own; "
        "PSNR %.2f -> %.2f dB (the gray photos: %.2f dB)",
        gain,
        before,
        ", ".join(f"'{p}'" for p in written),
        report.ratio_before,
        report.ratio_after,
        report.photos,
        report.psnr_before,
        report.psnr_after,
        report.psnr_gray,
    )
    return report
