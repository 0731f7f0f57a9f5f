"""Film repair before the colour: deflicker, stabilize, dust, scratches, degrain.

Old prints flicker (exposure jumps from frame to frame), weave in the gate, carry dust and
dirt (a spot on one frame only), vertical scratches (a thin line at a steady column) and
grain. :class:`Repairer` takes a shot's luminance planes in order and gives them back repaired,
a few frames later (it looks ahead :data:`LOOKAHEAD` frames, :data:`PATH_LOOKAHEAD` with
stabilize), one for one:

* **deflicker**: each frame's mean brightness and contrast are drawn to their trend within the
  shot, a weighted straight-line fit over the frames around it (a fade is a straight line
  there and is kept); a frame far off the trend (a flash, a blast) is left as it is.
* **stabilize**: the frame-to-frame shift (phase correlation) is summed into the shot's path;
  the frame is moved onto the path's trend (pans are kept, weave is removed), its border
  filled from its edge.
* **dust**: a spot that is brighter (or darker) than both neighbours brought onto it along the
  optical flow, where those neighbours agree with each other, is one frame's dirt: it is
  filled from them. What stays in place along the motion is picture and is never touched.
* **scratches**: a thin vertical line, the same in most rows and found at the same column in a
  neighbouring frame, is filled from its sides.
* **degrain**: the frame averaged with its flow-aligned neighbours where they agree (a
  temporal bilateral filter), its strength set by the grain measured on the shot.

Nothing crosses a cut (found here on brightness-normalised thumbnails, so flicker is not a
cut): a shot's first and last frames use only their own shot. Example::

    repairer = Repairer(RepairConfig(steps=("deflicker", "dust")))
    for y in frames:                      # uint8 (H, W) luminance planes
        for repaired in repairer.push(y):
            write(repaired)
    for repaired in repairer.finish():
        write(repaired)

Restore runs it on a thread of its own, a few frames ahead of the colour stage
(:class:`RepairedFrames` read by :class:`~filmcolor.io.reader.Prefetch`).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..config import RepairConfig
from .temporal import OpticalFlow, flow_maps, remap

log = logging.getLogger(__name__)

LOOKAHEAD = 12
"""Frames held after the one being repaired: the trends of brightness and position are fitted
over the frames up to this far on each side."""

BRIGHTNESS_SPAN = 3.0
"""Frames (the Gaussian weights' sigma) over which the brightness trend is fitted."""

PATH_LOOKAHEAD = 24
"""With stabilize, frames held on each side for the trend of the picture's position: weave
drifts for a few frames at a time, so a short window's mean still weaves (measured on the
damage model: 24 frames take out twice what 12 do on a steady shot)."""

PATH_DEGREE = 1
PATH_SPAN = 20.0
"""Frames (sigma) over which the trend of the picture's position is fitted, a straight line
(a pan at a steady speed is kept whole, also where the window is cut short by a cut)."""

THUMB_WIDTH = 96
"""Width of the thumbnails on which cuts and brightness are measured."""

SHIFT_WIDTH = 256
"""Width at which the frame-to-frame shift is measured (phase correlation)."""

STEADY = 0.5
"""Corrections of the position below this many pixels are not made: a sub-pixel move blurs
a sharp frame more than it steadies it."""

WEAVE = 0.006
"""The largest correction of the position, as a share of the frame's height: three times the
weave of a worn 16 mm print (0.2 % of the height); a larger departure from the smoothed path
is the camera's own shake, which a stabilizer must not take out of a hand-held shot."""

FLOW_WIDTH = 320
"""Width at which the optical flow between neighbours is computed (then scaled up)."""

GRAIN_STEP = 3
"""The grain is measured on every third pixel of every third line (a ninth of them will do)."""

GRAIN_FLOOR = 0.5
"""Grain (in levels, its standard deviation) below which degrain leaves a frame alone."""

CUT_DIFFERENCE = 0.55
"""Mean absolute difference of two brightness-normalised thumbnails (in standard deviations)
above which a cut is declared."""

DARK = 20.0
"""Levels added to brightness before it is compared as a ratio: flicker on a dark frame is an
added light more than a factor, and a few levels there are not a flash."""

FLICKER_KEEP = (0.3, 0.5)
"""|log(brightness / trend)| up to the first value is flicker and corrected in full; from the
second on it is the film's own (a flash, a blast) and kept; in between, partly."""


@dataclass
class _Frame:
    index: int
    y: np.ndarray  # uint8 (H, W), replaced as the steps run
    thumb: np.ndarray  # float32 thumbnail of the input
    steady: np.ndarray | None  # float32 at SHIFT_WIDTH (stabilize only)
    shot: int
    mean: float
    std: float
    step: tuple[float, float] = (0.0, 0.0)  # shift from the previous frame of the shot (thumb px)
    leveled: bool = False  # deflicker and stabilize applied
    small: np.ndarray | None = None  # uint8 at FLOW_WIDTH, after deflicker and stabilize
    scratches: list[tuple[int, int]] | None = None  # its scratch columns, once measured
    half: np.ndarray | None = None  # at half size (frames of 480 lines or more), leveled
    boxed: np.ndarray | None = None  # leveled, averaged over 2 x 2 pixels (a dust neighbour)


class _Warp:
    """A neighbour brought onto a frame along the flow, made only as large as a step needs: the
    flow is found at :data:`FLOW_WIDTH`, and its sampling maps are enlarged to the whole frame
    (degrain), to half size (the dust search), or read at a few pixels (the grain estimate on
    every :data:`GRAIN_STEP`-th pixel, the dust to fill). Enlarging the maps and sampling the
    whole frame cost most of the flow's time at 720p; the grain is measured on every frame, the
    whole frame is needed only where degrain works."""

    def __init__(
        self, source: _Frame, maps: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]
    ) -> None:
        self.source = source
        self.shape = shape  # the frame's (h, w)
        sh, sw = maps[0].shape
        h, w = shape
        self._scale = (sw / w, sh / h)  # from the frame's pixels to the maps'
        # Where each pixel samples from, at the small size in the frame's pixels: a straight
        # grid stays straight, so the maps are enlarged instead of the flow.
        self._maps = ((maps[0] + 0.5) * (w / sw) - 0.5, (maps[1] + 0.5) * (h / sh) - 0.5)
        self._full: np.ndarray | None = None

    def full(self) -> np.ndarray:
        """The neighbour at the frame's size."""
        if self._full is None:
            h, w = self.shape
            map_x, map_y = (
                cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in self._maps
            )
            self._full = remap(self.source.y, (map_x, map_y), cv2.INTER_LINEAR)
        return self._full

    def half(self) -> np.ndarray:
        """The neighbour at half size, as the full-size neighbour shrunk by 2 x 2 averaging
        would be: the mean of four bilinear samples half a pixel apart is one bilinear sample of
        the picture averaged over 2 x 2 pixels, taken at their centre."""
        source = self.source
        if source.boxed is None:
            source.boxed = cv2.blur(source.y, (2, 2))  # pixel x holds the mean of x - 1 and x
        h, w = self.shape
        size = (w // 2, h // 2)
        maps = tuple(cv2.resize(m, size, interpolation=cv2.INTER_LINEAR) + 0.5 for m in self._maps)
        return remap(source.boxed, maps, cv2.INTER_LINEAR)

    def at(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """The neighbour at the frame's pixels (rows[i], columns[i]), as a flat uint8 array."""
        count = len(rows)
        if count == 0:
            return np.zeros(0, np.uint8)
        # cv2.remap takes maps of fewer than 32,768 columns: the points in rows of 1,024
        lines = -(-count // 1024)
        u = np.zeros(lines * 1024, np.float32)
        v = np.zeros(lines * 1024, np.float32)
        u[:count], v[:count] = self._small(columns, rows)
        return self._read(u.reshape(lines, 1024), v.reshape(lines, 1024)).ravel()[:count]

    def grid(self, step: int) -> np.ndarray:
        """The neighbour at the frame's pixels [::step, ::step]."""
        h, w = self.shape
        key = (h, w, step, *self._maps[0].shape)
        if key not in _GRIDS:
            u, v = self._small(
                np.arange(0, w, step, dtype=np.float32), np.arange(0, h, step, dtype=np.float32)
            )
            _GRIDS[key] = tuple(np.ascontiguousarray(a) for a in np.meshgrid(u, v))
        return self._read(*_GRIDS[key])

    def _small(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The frame's pixel coordinates x, y in the small maps' pixels."""
        return (x + 0.5) * self._scale[0] - 0.5, (y + 0.5) * self._scale[1] - 0.5

    def _read(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The neighbour sampled where the maps say, at the maps' points (u, v)."""
        maps = tuple(remap(m, (u, v), cv2.INTER_LINEAR) for m in self._maps)
        return remap(self.source.y, maps, cv2.INTER_LINEAR)


_GRIDS: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}


@dataclass
class RepairTimes:
    """Seconds each step took (CPU time of this thread)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds

    def merge(self, other: RepairTimes) -> None:
        for step, seconds in other.seconds.items():
            self.add(step, seconds)


class Repairer:
    """Repairs luminance planes pushed in order (see the module docstring).

    Args:
        cfg: which steps, and how strongly (0..1 blends the repair with the input).
    """

    def __init__(self, cfg: RepairConfig) -> None:
        self.cfg = cfg
        self.steps = frozenset(cfg.steps)
        self.lookahead = PATH_LOOKAHEAD if "stabilize" in self.steps else LOOKAHEAD
        self.cuts: list[int] = []
        self.times = RepairTimes()
        self.noise: float | None = None  # grain sigma of the current shot, in levels
        self.spots = 0  # dust pixels filled
        self.specks = 0  # dust specks filled
        self.scratch_columns = 0  # scratch columns filled (frames x columns)
        self._frames: list[_Frame] = []
        self._count = 0
        self._shot = 0
        self._flow = OpticalFlow()
        self._done = 0  # frames given back
        self._noise_history: list[float] = []

    # -- the stream -------------------------------------------------------------------------

    def push(self, y: np.ndarray) -> list[np.ndarray]:
        """Take the next frame's luminance (uint8, H x W); return the frames now repaired."""
        started = time.perf_counter()
        thumb = _thumbnail(y)
        mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(thumb))
        previous = self._frames[-1] if self._frames else None
        if previous is not None and _is_cut(previous, thumb, mean, std):
            self._shot += 1
            self.cuts.append(self._count)
        steady = _thumbnail(y, SHIFT_WIDTH, quick=False) if "stabilize" in self.steps else None
        frame = _Frame(self._count, y, thumb, steady, self._shot, mean, max(std, 1e-3))
        if previous is not None and previous.shot == frame.shot and steady is not None:
            assert previous.steady is not None
            frame.step = _shift(previous.steady, steady)
        self._frames.append(frame)
        self._count += 1
        self.times.add("analysis", time.perf_counter() - started)
        return self._drain(final=False)

    def finish(self) -> list[np.ndarray]:
        """The frames still held, repaired."""
        if self._count and self._count < 3 and self.steps & {"dust", "scratches", "degrain"}:
            log.info(
                "the film has %d frame(s): too few for the temporal repairs, which need a frame "
                "on each side; only the others ran",
                self._count,
            )
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[np.ndarray]:
        out = []
        while self._frames and self._done <= self._frames[-1].index:
            target = self._get(self._done)
            ahead = [f for f in self._frames if f.index > target.index and f.shot == target.shot]
            shot_closed = self._frames[-1].shot != target.shot
            if not (final or shot_closed or len(ahead) >= self.lookahead + 1):
                break
            out.append(self._repair(target))
            self._done += 1
            # Keep what later frames still need: lookahead + 1 frames behind the next one.
            self._frames = [f for f in self._frames if f.index >= self._done - self.lookahead - 1]
        return out

    def _get(self, index: int) -> _Frame:
        return next(f for f in self._frames if f.index == index)

    def _shot_window(self, frame: _Frame, radius: int) -> list[_Frame]:
        return [
            f for f in self._frames if f.shot == frame.shot and abs(f.index - frame.index) <= radius
        ]

    # -- the steps --------------------------------------------------------------------------

    def _repair(self, frame: _Frame) -> np.ndarray:
        """Frame ``frame`` with every chosen step, blended with the input by strength."""
        original = frame.y
        self._level(frame)
        neighbours = [
            self._leveled(f) for f in self._shot_window(frame, 1) if f.index != frame.index
        ]
        y = frame.y
        if neighbours and self.steps & {"dust", "scratches", "degrain"}:
            y = self._local(frame, neighbours)
        elif self.steps & {"scratches"}:
            y = self._scratches(frame, y, [])
        strength = self.cfg.strength
        if strength < 1.0:
            y = cv2.addWeighted(y, strength, original, 1.0 - strength, 0.0)
        return y

    def _leveled(self, frame: _Frame) -> _Frame:
        self._level(frame)
        return frame

    def _level(self, frame: _Frame) -> None:
        """Deflicker and stabilize ``frame`` in place (once), from its shot's trend."""
        if frame.leveled:
            return
        started = time.perf_counter()
        window = self._shot_window(frame, LOOKAHEAD)
        y = frame.y
        if "deflicker" in self.steps and len(window) >= 3:
            y = _deflicker(y, frame, window)
        self.times.add("deflicker", time.perf_counter() - started)
        started = time.perf_counter()
        if "stabilize" in self.steps and len(window) >= 3:
            y = _stabilize(y, frame, self._shot_window(frame, PATH_LOOKAHEAD))
        frame.y = y
        h, w = y.shape
        width = min(FLOW_WIDTH, w)
        frame.small = cv2.resize(
            y, (width, max(8, round(h * width / w))), interpolation=cv2.INTER_AREA
        )
        if h >= 480:
            frame.half = cv2.resize(y, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        frame.leveled = True
        self.times.add("stabilize", time.perf_counter() - started)

    def _local(self, frame: _Frame, neighbours: list[_Frame]) -> np.ndarray:
        """Dust, scratches and degrain: the steps that compare a frame with its neighbours."""
        started = time.perf_counter()
        assert frame.small is not None
        warps = []
        for other in neighbours:
            assert other.small is not None
            warps.append(
                _Warp(other, flow_maps(self._flow(frame.small, other.small)), frame.y.shape)
            )
        y = frame.y
        if frame.index in self.cuts or frame.index == 0:
            self._noise_history.clear()
        self._noise_history.append(grain_sigma(y, warps[0].grid(GRAIN_STEP)))
        self.noise = float(np.median(self._noise_history[-9:]))
        self.times.add("flow", time.perf_counter() - started)
        if "dust" in self.steps and len(warps) == 2:
            started = time.perf_counter()
            y = self._dust(y, warps, frame.half)
            self.times.add("dust", time.perf_counter() - started)
        if "scratches" in self.steps:
            started = time.perf_counter()
            y = self._scratches(frame, y, neighbours)
            self.times.add("scratches", time.perf_counter() - started)
        if "degrain" in self.steps and self.noise >= GRAIN_FLOOR:
            started = time.perf_counter()
            full = [warp.full() for warp in warps]
            self.times.add("flow", time.perf_counter() - started)
            started = time.perf_counter()
            y = _degrain(y, full, self.noise)
            self.times.add("degrain", time.perf_counter() - started)
        return y

    def _dust(self, y: np.ndarray, warps: list[_Warp], half: np.ndarray | None) -> np.ndarray:
        """``y`` with one frame's dirt filled (``half``: ``y`` at half size, when made)."""
        threshold = max(16.0, 3.0 * (self.noise or 0.0))
        h, w = y.shape
        raw = tuple(
            warp.source.y if warp.source.half is None else warp.source.half for warp in warps
        )
        if half is not None:  # found at half size (a quarter of the work), filled at full size
            found = dust_mask(
                half, *(warp.half() for warp in warps), threshold, blur=False, neighbours=raw
            )
            if not found.any():
                return y
            mask = cv2.resize(found.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
            mask = cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool)
        else:
            mask = dust_mask(y, warps[0].full(), warps[1].full(), threshold, neighbours=raw)
            if not mask.any():
                return y
        self.spots += int(mask.sum())
        self.specks += cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1
        rows, columns = np.nonzero(mask)
        before, after = (warp.at(rows, columns).astype(np.uint16) for warp in warps)
        out = y.copy()
        out[rows, columns] = ((before + after + 1) // 2).astype(np.uint8)
        return out

    def _scratches(self, frame: _Frame, y: np.ndarray, neighbours: list[_Frame]) -> np.ndarray:
        columns = self._columns_of(frame, y)
        if not columns:
            return y
        if neighbours:  # a scratch stays at its column: found in a neighbour too (within 2 px)
            seen = [self._columns_of(other, other.y) for other in neighbours]
            columns = [
                (x, sign) for x, sign in columns if any(abs(x - c) <= 2 for s in seen for c, _ in s)
            ]
        if not columns:
            return y
        self.scratch_columns += len(columns)
        return fill_columns(y, [x for x, _ in columns])

    @staticmethod
    def _columns_of(frame: _Frame, y: np.ndarray) -> list[tuple[int, int]]:
        """The scratch columns of a frame (measured once, on every 4th row: a scratch runs
        from top to bottom)."""
        if frame.scratches is None:
            frame.scratches = scratch_columns(y[::4] if y.shape[0] >= 64 else y)
        return frame.scratches


class RepairedFrames:
    """The frames of ``frames`` repaired, one per :meth:`read` (None at the end): a source for
    :class:`~filmcolor.io.reader.Prefetch`, so that repair runs on a thread of its own while
    the colour stage works on the frames before (OpenCV and numpy release the GIL)."""

    def __init__(self, repairer: Repairer, frames: Iterator[np.ndarray]) -> None:
        self.repairer = repairer
        self._frames = frames
        self._ready: deque[np.ndarray] = deque()
        self._finished = False

    def read(self) -> np.ndarray | None:
        while not self._ready:
            if self._finished:
                return None
            y = next(self._frames, None)
            if y is None:
                self._finished = True
                self._ready.extend(self.repairer.finish())
            else:
                self._ready.extend(self.repairer.push(y))
        return self._ready.popleft()


# -- measurements and filters (pure functions) ----------------------------------------------


def _thumbnail(y: np.ndarray, width: int = THUMB_WIDTH, quick: bool = True) -> np.ndarray:
    """``y`` shrunk to ``width`` (float32). ``quick=False``: in one step, for the shift's
    phase correlation, whose sub-pixel positions the two steps would move."""
    h, w = y.shape
    width = min(width, w)
    # First by the largest whole factor of both sides (OpenCV's fast path for area averaging, a
    # tenth of the time at 720p), then the rest of the way.
    common = math.gcd(w, h)
    factor = max((f for f in range(1, w // width + 1) if common % f == 0), default=1)
    if quick and factor >= 2:
        y = cv2.resize(y, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(
        y, (width, max(4, round(h * width / w))), interpolation=cv2.INTER_AREA
    ).astype(np.float32)


def _is_cut(previous: _Frame, thumb: np.ndarray, mean: float, std: float) -> bool:
    """A cut between ``previous`` and this thumbnail: their brightness-normalised pictures
    differ (flicker, a change of brightness alone, is not a cut)."""
    a = (previous.thumb - previous.mean) / max(previous.std, 4.0)
    b = (thumb - mean) / max(std, 4.0)
    return float(np.mean(np.abs(a - b))) > CUT_DIFFERENCE


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How far the picture moved from thumbnail ``a`` to ``b`` (x, y), by phase correlation."""
    window = _hanning(a.shape)
    (dx, dy), response = cv2.phaseCorrelate(a, b, window)
    if response < 0.05:  # nothing to lock on (a blank frame): no move
        return 0.0, 0.0
    return float(dx), float(dy)


_HANNING: dict[tuple[int, int], np.ndarray] = {}


def _hanning(shape: tuple[int, ...]) -> np.ndarray:
    key = (shape[0], shape[1])
    if key not in _HANNING:
        _HANNING[key] = cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F)
    return _HANNING[key]


def trend(
    values: np.ndarray,
    positions: np.ndarray,
    at: int,
    robust: bool = True,
    degree: int = 1,
    span: float = BRIGHTNESS_SPAN,
) -> float:
    """The value at position ``at`` of a weighted polynomial fit (a straight line, or a
    parabola with ``degree`` 2: a pan that speeds up) to ``values``.

    Gaussian weights over the distance from ``at`` (sigma ``span`` frames); with ``robust``,
    the values far off the fit are weighed down and out (Tukey's biweight, from the weighted
    median on), so a flash of a few frames within the window does not pull the trend.
    """
    distance = (positions - at).astype(np.float64)
    weights = np.exp(-0.5 * (distance / span) ** 2)
    degree = min(degree, len(values) - 1)
    if not robust or len(values) < 4:
        return float(_fit(values, distance, weights, degree)[-1])
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    level = float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    residual = values - level
    for _ in range(3):
        scale = max(1.4826 * float(np.median(np.abs(residual))), 0.02)
        robust_weights = np.clip(1.0 - (residual / (4.0 * scale)) ** 2, 0.0, None) ** 2
        coefficients = _fit(values, distance, weights * robust_weights + 1e-9, degree)
        residual = values - np.polyval(coefficients, distance)
    return float(coefficients[-1])  # the fit at distance 0


def _fit(values: np.ndarray, x: np.ndarray, weights: np.ndarray, degree: int) -> np.ndarray:
    """Weighted least-squares polynomial coefficients (highest power first)."""
    if degree <= 0 or np.ptp(x) == 0:
        return np.array([float((weights * values).sum() / weights.sum())])
    return np.polyfit(x, values, degree, w=np.sqrt(weights))


def _deflicker(y: np.ndarray, frame: _Frame, window: list[_Frame]) -> np.ndarray:
    positions = np.array([f.index for f in window])
    means = np.array([f.mean for f in window])
    stds = np.array([f.std for f in window])
    mean_trend = trend(np.log(means + DARK), positions, frame.index)
    std_trend = trend(np.log(stds + DARK), positions, frame.index)
    off = abs(np.log(frame.mean + DARK) - mean_trend)
    low, high = FLICKER_KEEP
    share = float(np.clip((high - off) / (high - low), 0.0, 1.0))  # 1: flicker, 0: the film's
    if share <= 0.0:
        return y
    target_mean = np.exp(mean_trend) - DARK
    target_std = np.exp(std_trend) - DARK
    gain = float(np.clip(target_std / frame.std, 0.67, 1.5))
    levels = np.arange(256, dtype=np.float32)
    mapped = (levels - frame.mean) * gain + target_mean
    lut = np.clip(levels + share * (mapped - levels) + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(y, lut)


def _stabilize(y: np.ndarray, frame: _Frame, window: list[_Frame]) -> np.ndarray:
    """Move ``frame`` onto its shot's smoothed path (the path summed from the frame steps)."""
    ordered = sorted(window, key=lambda f: f.index)
    path = np.zeros((len(ordered), 2))
    for i in range(1, len(ordered)):
        path[i] = path[i - 1] + np.array(ordered[i].step)
    positions = np.array([f.index for f in ordered])
    here = path[[f.index for f in ordered].index(frame.index)]
    smooth = np.array(
        [
            trend(
                path[:, k], positions, frame.index, robust=False, degree=PATH_DEGREE, span=PATH_SPAN
            )
            for k in range(2)
        ]
    )
    assert frame.steady is not None
    scale = y.shape[1] / frame.steady.shape[1]
    dx, dy = (smooth - here) * scale
    if not STEADY <= np.hypot(dx, dy) <= WEAVE * y.shape[0]:
        return y  # too little to be worth a move, or more than a gate weaves (the camera)
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(
        y, matrix, (y.shape[1], y.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )


def grain_sigma(y: np.ndarray, neighbour: np.ndarray, step: int = GRAIN_STEP) -> float:
    """The grain's standard deviation in levels: grain is new on every frame, so a frame and a
    neighbour brought onto it differ by it twice over (the median difference is robust to where
    the flow failed; the picture's own texture, aligned, cancels). ``neighbour``: brought onto
    ``y`` at its pixels [::step, ::step]."""
    difference = cv2.absdiff(np.ascontiguousarray(y[::step, ::step]), neighbour)
    return float(1.4826 * np.median(difference) / np.sqrt(2.0))


MOST_SPECKS = 64
"""Specks filled in a frame at most (the largest first, each searched for in the neighbouring
frames): a dirty print has a few dozen; more candidates are the picture's texture."""


def dust_mask(
    y: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    threshold: float,
    blur: bool = True,
    neighbours: tuple[np.ndarray, ...] = (),
) -> np.ndarray:
    """Where ``y`` holds one frame's dirt (a bool mask).

    ``before`` and ``after`` are the neighbouring frames brought onto ``y`` along the flow. A
    pixel is dirt where it is off both by more than ``threshold`` in the same direction while
    they agree; the spots are grown by a pixel (their soft rims) and kept small (a large region
    is the flow failing, not dust). A spot found again near its place in one of
    ``neighbours`` (the frames as they are, not brought along the flow) is a small object that
    moved faster than the flow follows: picture, kept.
    """
    # Differences of 3x3 means: a speck spans pixels, grain does not; the neighbours' overall
    # brightness is matched first (flicker is not dirt).
    yb, bb, ab = ((cv2.blur(a, (3, 3)) if blur else a) for a in (y, before, after))
    d1 = cv2.subtract(yb, bb, dtype=cv2.CV_32F)
    d2 = cv2.subtract(yb, ab, dtype=cv2.CV_32F)
    d1 -= float(np.median(d1[::4, ::4]))  # a sixteenth of the pixels tells the offset
    d2 -= float(np.median(d2[::4, ::4]))
    low, high = np.minimum(d1, d2), np.maximum(d1, d2)
    candidate = ((low > threshold) | (high < -threshold)) & (high - low < threshold * 0.6)
    where = np.flatnonzero(candidate)
    spot = np.zeros(y.shape, bool)
    if where.size == 0:
        return spot
    rows, columns = np.divmod(where, y.shape[1])
    # ... and a speck stands out of its own frame too (where the flow slips along an edge, the
    # frame is like its surroundings)
    own = yb[rows, columns] - cv2.blur(y, (11, 11))[rows, columns].astype(np.float32)
    bright = (low[rows, columns] > threshold) & (own > threshold * 0.7)
    dark = (high[rows, columns] < -threshold) & (own < -threshold * 0.7)
    # ... on a background the neighbours show smoother than the speck is strong: on moving
    # texture (water, leaves) the flow cannot be trusted to the pixel
    fill = cv2.add(bb, ab, dtype=cv2.CV_32F)
    fill *= 0.5
    mean = cv2.blur(fill, (7, 7))[rows, columns]
    square = cv2.blur(cv2.multiply(fill, fill), (7, 7))[rows, columns]
    texture = np.sqrt(np.maximum(square - mean * mean, 0.0))
    spot[rows, columns] = (bright | dark) & (
        texture < np.maximum(threshold * 0.6, 0.25 * np.abs(own))
    )
    mask = spot.astype(np.uint8)
    if not mask.any():
        return spot
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    largest = max(64, int(y.size * 0.0004))
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] <= largest
    candidates = [i for i in range(1, count) if keep[i]]
    candidates.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    for i in candidates[MOST_SPECKS:]:  # more is texture the tests above let through
        keep[i] = False
    if neighbours:
        for i in candidates[:MOST_SPECKS]:
            x0, y0, w, h = (int(v) for v in stats[i, :4])
            if _found_nearby(y, neighbours, x0, y0, w, h):
                keep[i] = False
    mask = keep[labels].astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return mask.astype(bool)


def _found_nearby(
    y: np.ndarray, neighbours: tuple[np.ndarray, ...], x0: int, y0: int, w: int, h: int
) -> bool:
    """Whether the patch of ``y`` around a spot is found again close by in a neighbour."""
    height, width = y.shape
    margin, reach = 2, max(8, round(0.03 * width))
    top, left = max(0, y0 - margin), max(0, x0 - margin)
    bottom, right = min(height, y0 + h + margin), min(width, x0 + w + margin)
    patch = y[top:bottom, left:right].astype(np.float32)
    energy = float(((patch - patch.mean()) ** 2).sum()) + 1e-3
    for other in neighbours:
        window = other[
            max(0, top - reach) : min(height, bottom + reach),
            max(0, left - reach) : min(width, right + reach),
        ].astype(np.float32)
        if window.shape[0] < patch.shape[0] or window.shape[1] < patch.shape[1]:
            continue
        if float(cv2.matchTemplate(window, patch, cv2.TM_SQDIFF).min()) < 0.3 * energy:
            return True
    return False


def scratch_columns(y: np.ndarray, contrast: float = 10.0) -> list[tuple[int, int]]:
    """Columns holding a thin vertical line from top to bottom: (column, +1 bright / -1 dark).

    A column's difference to the mean of the columns 3 px to either side, in each row: where
    the same sign and more than ``contrast`` levels in 70 % of the rows (and the median far
    beyond the film's own column-to-column texture), the column is a line.
    """
    image = y.astype(np.float32)
    h, w = image.shape
    if w < 9 or h < 8:
        return []
    side = 0.5 * (np.roll(image, 3, axis=1) + np.roll(image, -3, axis=1))
    ridge = image - side
    ridge[:, :3] = 0
    ridge[:, -3:] = 0
    # The film's own texture from every fourth column's median; a column's median is beyond
    # the limit only where over half its rows are: those few get their median.
    sample = np.median(np.ascontiguousarray(ridge[:, ::4].T), axis=1)
    texture = 1.4826 * float(np.median(np.abs(sample))) + 1e-3
    limit = max(contrast, 6.0 * texture)
    half = h // 2
    likely = np.flatnonzero(
        (np.count_nonzero(ridge > limit, axis=0) >= half)
        | (np.count_nonzero(ridge < -limit, axis=0) >= half)
    )
    median = np.zeros(w, np.float32)
    if likely.size:
        median[likely] = np.median(ridge[:, likely], axis=0)
    found = []
    for x in np.flatnonzero(np.abs(median) > limit):
        sign = 1 if median[x] > 0 else -1
        share = float(np.mean(sign * ridge[:, x] > contrast * 0.5))
        if share >= 0.7:
            found.append((int(x), sign))
    # A line shows in the columns beside it too (2-3 px wide), and as an echo of the other sign
    # 3 px away (where it is the side): keep the strongest within 4 px.
    kept: list[tuple[int, int]] = []
    for x, sign in sorted(found, key=lambda item: -abs(median[item[0]])):
        if all(abs(x - other) > 4 for other, _ in kept):
            kept.append((x, sign))
    return sorted(kept)


def fill_columns(y: np.ndarray, columns: list[int], half_width: int = 1) -> np.ndarray:
    """``y`` with each column (and ``half_width`` on either side) drawn straight across from
    the columns beside it, row by row."""
    out = y.copy()
    w = y.shape[1]
    for x in columns:
        left, right = max(0, x - half_width - 1), min(w - 1, x + half_width + 1)
        if right - left < 2:
            continue
        a = y[:, left].astype(np.float32)
        b = y[:, right].astype(np.float32)
        for c in range(left + 1, right):
            t = (c - left) / (right - left)
            out[:, c] = np.clip(a + (b - a) * t + 0.5, 0, 255).astype(np.uint8)
    return out


def _degrain(y: np.ndarray, warped: list[np.ndarray], sigma: float | None) -> np.ndarray:
    """``y`` averaged with its flow-aligned neighbours where they agree with it (within a few
    grain sigmas); the neighbours count less where they differ (motion the flow missed)."""
    if not warped or not sigma or sigma < GRAIN_FLOOR:
        return y
    scale = 2.5 * sigma
    lut = np.clip(255.0 * np.exp(-((np.arange(256) / scale) ** 2)) + 0.5, 0, 255).astype(np.uint8)
    total = y.astype(np.float32)
    weights = np.full(y.shape, 255.0, np.float32)
    for other in warped:
        weight = cv2.LUT(cv2.absdiff(y, other), lut).astype(np.float32)  # 0..255
        total += cv2.multiply(weight, other.astype(np.float32), scale=1.0 / 255.0)
        weights += weight
    averaged = cv2.divide(total, weights, scale=255.0)
    # What grain the average left (most where the neighbours did not count): an edge-keeping
    # spatial filter at that level.
    left = sigma / float(np.sqrt(cv2.mean(weights)[0] / 255.0))
    out = np.clip(averaged + 0.5, 0, 255).astype(np.uint8)
    if left >= 3.0:
        out = cv2.bilateralFilter(out, 5, 2.0 * left, 1.5)
    return out
