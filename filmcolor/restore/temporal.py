"""Temporal stability: each frame's colour blended toward its neighbours, never across a cut.

Colorizing frame by frame flickers. Restore hands every frame's working-size luminance to a
*colour stage*; the stage calls the model (batched), and gives back each frame's chroma in
order, a few frames later:

* :class:`PerFrameColor` (``--temporal none``): the model's chroma, frame by frame.
* :class:`FlowBlender` (``--temporal flow``, the default): dense optical flow (OpenCV DIS) on
  the luminance warps the neighbours' chroma onto frame t: the previous frame's *result*
  (so colour that stays put stays put over long stretches) and the model's chroma of
  t+1 .. t+radius (a small look-ahead). Each neighbour's weight falls where its warp is not
  trusted: forward-backward flow mismatch, luminance mismatch after warping (both luminances
  matched in mean and contrast first, so that fades do not count as mismatch), pixels that
  come from outside the picture. Moving things and newly revealed areas keep their own
  colour. Cuts found online by PySceneDetect on the same small luminance reset the blending:
  no colour crosses a cut. Optionally the model runs on keyframes only and colour is
  carried along the flow between them (``keyframe_interval``), with the model called again
  where the carried colour does not cover the frame, or where the contrast has risen much
  since the last keyframe (a fade-in).

Memory is a fixed window (radius + 2 frames at working size, and MODEL_AHEAD more when the
model runs in a background thread, as in restore), whatever the film's length.
Example::

    stage = make_color_stage(TemporalConfig(), engine.run, fps=Fraction(24))
    for payload, luma in frames:              # luma: working-size float32 in [-1, 1]
        for payload, chroma in stage.push(payload, luma):
            write(payload, chroma)            # chroma: (2, h, w) float32 in [-1, 1]
    for payload, chroma in stage.finish():
        write(payload, chroma)
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from ..config import SceneConfig, TemporalConfig
from ..scenes import CutDetector

log = logging.getLogger(__name__)

Model = Callable[[np.ndarray], np.ndarray]
"""(N, h, w) float32 luminance in [-1, 1] -> (N, 2, h, w) float32 chroma in [-1, 1]."""
Fit = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Luminance, chroma -> the chroma to show (restore: :func:`~filmcolor.color.fit_colour`)."""

PAST_WEIGHT = 4.0
"""Weight of the previous frame's (already blended) result against the frame's own chroma (1)."""
FUTURE_WEIGHT = 0.75
"""Weight of the next frame's chroma; halved for each further frame of the look-ahead."""
LUMA_SIGMA = 30.0
"""Luminance mismatch (0-255 scale, after mean/contrast matching) at which trust falls to 1/e
(12 trusted grainy old film too little: on the a-bomb test film the model ran on 150 of 360
frames and its colour flickered more; with 30, 68 frames, chroma CDC -46% against frame by frame;
see docs/benchmarks.md)."""
KEEP_STRENGTH = 1.25
"""Averaging colours that disagree in hue (a model unsure from frame to frame) shortens them:
the blend's strength is raised back toward the weighted mean strength of what it blends, by at
most this factor. Its strength is warped as a map of its own, since resampling the chroma also
shortens it where hue varies from pixel to pixel, and over a run of carried frames that adds
up (measured in docs/benchmarks.md: the blend keeps colourfulness within a few percent of frame
by frame)."""
COVERAGE_TRUST = 0.3
"""Automatic keyframes: a pixel counts as covered by carried colour above this total weight."""
MIN_COVERAGE = 0.85
"""Automatic keyframes: the model runs when carried colour covers less of the frame than this."""
FADE_RATIO = 0.85
"""Automatic keyframes: the model runs again when the contrast has risen by more than this ratio
since the last keyframe (a fade-in: the model's colour of a dim frame is faint). Not on a
fade-out: the colour carried from the brighter frames is the steadier one there."""
MODEL_AHEAD = 8
"""With the model in the background: frames held beyond the look-ahead, so that a keyframe's
model run (tens of ms on a CPU) overlaps the flow work of the frames before it."""


def to_u8(luma: np.ndarray) -> np.ndarray:
    """Luminance in [-1, 1] as uint8 (what the optical flow wants)."""
    return np.clip((luma + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def match_levels(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` (float) with the mean and contrast of ``reference``: fades are not mismatch."""
    (mean_i,), (std_i,) = (v.ravel() for v in cv2.meanStdDev(image))
    (mean_r,), (std_r,) = (v.ravel() for v in cv2.meanStdDev(reference))
    gain = float(std_r / std_i) if std_i > 1.0 and std_r > 1.0 else 1.0
    # Python floats: the result keeps the image's float32 (numpy scalars would make it float64).
    return (image - float(mean_i)) * gain + float(mean_r)


@functools.lru_cache(maxsize=4)
def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of an h x w image (made once per frame size, read-only)."""
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Sample ``image`` (H, W) or (H, W, C) at x + flow(x): a neighbour brought onto this frame.

    Colour carried from frame to frame is warped with ``cv2.INTER_CUBIC``: bilinear sampling
    blurs a little at every step, and over a run of carried frames the colour fades.
    """
    return remap(image, flow_maps(flow), interpolation)


def flow_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel samples from (x + flow(x)): made once, used by several :func:`remap`."""
    grid_x, grid_y = pixel_grid(*flow.shape[:2])
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


def remap(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], interpolation: int) -> np.ndarray:
    """:func:`warp` with the sampling maps of :func:`flow_maps`."""
    return cv2.remap(image, maps[0], maps[1], interpolation, borderMode=cv2.BORDER_REPLICATE)


def _contrast(small: np.ndarray) -> float:
    """Standard deviation of a uint8 luminance image."""
    return float(cv2.meanStdDev(small)[1][0, 0])


def _contrast_ratio(a: float, b: float) -> float:
    """The lower of two contrasts over the higher, in (0, 1]."""
    return (min(a, b) + 1.0) / (max(a, b) + 1.0)


class OpticalFlow:
    """Dense flow between two uint8 luminance images (OpenCV DIS, 'ultrafast' preset).

    ``flow(a, b)[y, x]`` is where pixel (x, y) of ``a`` is found in ``b``.
    """

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        b_matched = np.clip(
            match_levels(b.astype(np.float32), a.astype(np.float32)), 0, 255
        ).astype(np.uint8)
        return self._dis.calc(a, b_matched, None)


def trust(
    target: np.ndarray, neighbour: np.ndarray, forward: np.ndarray, backward: np.ndarray
) -> np.ndarray:
    """How far the neighbour's warp onto ``target`` can be trusted, per pixel, in [0, 1].

    Args:
        target: uint8 luminance of frame t (H, W).
        neighbour: uint8 luminance of the neighbour s.
        forward: flow t -> s; backward: flow s -> t.
    """
    h, w = target.shape
    back_at = warp(backward, forward)
    fx, fy, bx, by = forward[..., 0], forward[..., 1], back_at[..., 0], back_at[..., 1]
    mismatch = (fx + bx) ** 2 + (fy + by) ** 2
    tolerance = 0.01 * (fx * fx + fy * fy + bx * bx + by * by) + 0.5
    weight = np.exp(-mismatch / tolerance)
    t = target.astype(np.float32)
    n = match_levels(warp(neighbour.astype(np.float32), forward), t)
    diff = cv2.blur(np.abs(t - n), (3, 3))
    weight *= np.exp(-((diff / LUMA_SIGMA) ** 2))
    grid_x, grid_y = pixel_grid(h, w)
    x, y = grid_x + forward[..., 0], grid_y + forward[..., 1]
    weight[(x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)] = 0.0
    # A flash (or a frame washed out or blacked out) changes the contrast at once, a fade only a
    # little from frame to frame: below half the contrast of the other, trust fades to zero.
    ratio = _contrast_ratio(_contrast(target), _contrast(neighbour))
    if ratio < 0.5:
        weight *= (ratio / 0.5) ** 2
    # Occlusion edges: take the lowest trust nearby, so colour does not bleed across them.
    return cv2.erode(weight, np.ones((3, 3), np.uint8)).astype(np.float32)


@dataclass
class StageTimes:
    """Seconds spent in the model and in the temporal work (flow, warps, cut detection): CPU time
    of the thread doing it (``time.thread_time``), so that a busy machine, where threads wait
    for a core, does not count against a stage."""

    model: float = 0.0
    temporal: float = 0.0
    model_frames: int = 0

    def add(self, other: StageTimes) -> None:
        """Count ``other``'s time and model frames in too (one segment's, into a restore's)."""
        self.model += other.model
        self.temporal += other.temporal
        self.model_frames += other.model_frames


class PerFrameColor:
    """``--temporal none``: the model's chroma for every frame, in batches."""

    def __init__(self, model: Model, batch_size: int = 4, fit: Fit | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.fit = fit
        self.times = StageTimes()
        self.cuts: list[int] = []  # frame by frame: nothing to reset at a cut
        self._pending: list[tuple[Any, np.ndarray]] = []

    def push(self, payload: Any, luma: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """Add the next frame; returns the frames finished so far, in order."""
        self._pending.append((payload, luma))
        return self._run() if len(self._pending) >= self.batch_size else []

    def finish(self) -> list[tuple[Any, np.ndarray]]:
        """The frames still held back."""
        return self._run() if self._pending else []

    def close(self) -> None:
        """Nothing to stop (the same call as :meth:`FlowBlender.close`)."""

    def _run(self) -> list[tuple[Any, np.ndarray]]:
        started = time.thread_time()
        chroma = self.model(np.stack([luma for _, luma in self._pending]))
        self.times.model += time.thread_time() - started
        self.times.model_frames += len(self._pending)
        if self.fit is not None:
            chroma = [self.fit(luma, c) for (_, luma), c in zip(self._pending, chroma, strict=True)]
        done = [(payload, c) for (payload, _), c in zip(self._pending, chroma, strict=True)]
        self._pending = []
        return done


@dataclass
class _Frame:
    index: int
    payload: Any
    luma: np.ndarray
    small: np.ndarray  # uint8 luminance at flow size
    shot: int
    key: bool
    chroma: np.ndarray | None = None  # the model's chroma (keyframes)
    result: np.ndarray | None = None  # blended chroma
    flows: dict[int, np.ndarray] = field(default_factory=dict)  # index -> flow to that frame
    trusts: dict[int, np.ndarray] = field(
        default_factory=dict
    )  # index -> trust of its warp onto this
    future: Future | None = None  # the model's chroma, being computed in the background


class FlowBlender:
    """``--temporal flow``: chroma blended along optical flow, reset at cuts (module docstring).

    Args:
        cfg: strength, look-ahead radius, keyframes, flow size, cut threshold.
        model: the colorizer, called on batches of working-size luminance.
        fps: the film's frame rate (PySceneDetect's minimum shot length is in frames).
        batch_size: frames per model call.
        background: run the model on keyframes in a thread of its own as soon as they are
            known, MODEL_AHEAD frames before their colour is needed (the model releases the
            GIL: it overlaps the flow work). Call :meth:`close` when done.
        fit: applied to each finished frame's chroma with its luminance on the way out (the
            colour carried on to the next frame is the blend before it); restore uses
            :func:`~filmcolor.color.fit_colour`. None: the blend as it comes.
    """

    def __init__(
        self,
        cfg: TemporalConfig,
        model: Model,
        fps: Fraction,
        batch_size: int = 4,
        background: bool = False,
        fit: Fit | None = None,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.fit = fit
        self.batch_size = batch_size
        self.times = StageTimes()
        self._times_lock = threading.Lock()
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="filmcolor-model") if background else None
        )
        self.ahead = MODEL_AHEAD if background else 0
        self.cuts: list[int] = []
        self._flow = OpticalFlow()
        self._cut_detector = CutDetector(
            SceneConfig(threshold=cfg.cut_threshold), fps, luma_only=True
        )
        self._window: deque[_Frame] = deque()
        self._previous: _Frame | None = None
        self._count = 0
        self._shot = 0
        self._since_key = 0
        self._key_contrast = 0.0

    @property
    def window_frames(self) -> int:
        """Frames held now (bounded by radius + ahead + 2, whatever the film's length)."""
        return len(self._window) + (self._previous is not None)

    def push(self, payload: Any, luma: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """Add the next frame (working-size luminance); returns the frames finished, in order."""
        started = time.thread_time()
        index = self._count
        self._count += 1
        small = self._small(luma)
        for cut in self._cut_detector.push_gray(self._cut_detector.small_gray(small)):
            self._cut(cut, index)
        if index in self.cuts:
            self._shot += 1
        first_in_shot = index == 0 or index in self.cuts
        interval = self.cfg.keyframe_interval
        frame = _Frame(index, payload, luma, small, self._shot, key=False)
        contrast = _contrast(small)
        if interval == 1 or first_in_shot:
            frame.key = True
        elif interval == 0:
            frame.key = (
                self._since_key >= self.cfg.max_interval
                or self._faded(contrast)
                or not self._carries(frame)
            )
        else:
            frame.key = self._since_key + 1 >= interval
        self._since_key = 0 if frame.key else self._since_key + 1
        if frame.key:
            self._key_contrast = contrast
        self._window.append(frame)
        if frame.key:
            self._submit(frame)
        self.times.temporal += time.thread_time() - started
        done = []
        while len(self._window) > self.cfg.radius + self.ahead:
            done.append(self._emit())
        return done

    def finish(self) -> list[tuple[Any, np.ndarray]]:
        """The frames still held back (the end of the film)."""
        for cut in self._cut_detector.finish():
            self._cut(cut, self._count)
        done = []
        while self._window:
            done.append(self._emit())
        return done

    def close(self) -> None:
        """Stop the background model thread (pending runs are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _small(self, luma: np.ndarray) -> np.ndarray:
        h, w = luma.shape
        width = min(w, self.cfg.flow_width)
        u8 = to_u8(luma)
        if width == w:
            return u8
        return cv2.resize(u8, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)

    def _cut(self, cut: int, current: int) -> None:
        """A cut before frame ``cut``, found while pushing frame ``current``.

        The frame being pushed is labelled by :meth:`push`; frames from the cut on that are
        still held start a new shot; a cut found after its frame was written is only logged.
        """
        if cut in self.cuts or cut <= 0:
            return
        self.cuts.append(cut)
        if cut >= current:
            return
        late = [f for f in self._window if f.index >= cut]
        for frame in late:
            frame.shot += 1
        if late:
            late[0].key = True
            self._submit(late[0])
            self._shot = late[-1].shot
        else:
            log.debug("cut at frame %d found after the frame was written", cut)

    def _run_model(self, frames: list[_Frame]) -> None:
        started = time.thread_time()
        for i in range(0, len(frames), self.batch_size):
            part = frames[i : i + self.batch_size]
            for frame, chroma in zip(
                part, self.model(np.stack([f.luma for f in part])), strict=True
            ):
                frame.chroma = chroma
        self._count_model(time.thread_time() - started, len(frames))

    def _count_model(self, seconds: float, frames: int) -> None:
        with self._times_lock:
            self.times.model += seconds
            self.times.model_frames += frames

    def _submit(self, frame: _Frame) -> None:
        """Start the model on a keyframe in the background (when there is a background)."""
        if self._pool is None or frame.future is not None or frame.chroma is not None:
            return

        def run(luma: np.ndarray = frame.luma) -> np.ndarray:
            started = time.thread_time()
            chroma = self.model(luma[None])[0]
            self._count_model(time.thread_time() - started, 1)
            return chroma

        frame.future = self._pool.submit(run)

    def _faded(self, contrast: float) -> bool:
        """Automatic keyframes: has the arriving frame's ``contrast`` risen much since the
        last keyframe (a fade-in)?
        The model's colour depends on it (faint on a dim frame): colour carried from the start
        of a fade-in would stay faint; a keyframe every step of contrast brings it back (each
        one blended with the colour before it, so the colour rises smoothly)."""
        return (
            contrast > self._key_contrast
            and _contrast_ratio(contrast, self._key_contrast) < FADE_RATIO
        )

    def _carries(self, frame: _Frame) -> bool:
        """Automatic keyframes: will the previous frame's colour, carried along the flow, cover
        enough of this one? Asked when the frame arrives, so that where it will not (fast or
        complex motion) the model starts in the background at once instead of stalling this
        thread when the frame's turn comes (the blend still checks, with the look-ahead too)."""
        previous = self._window[-1] if self._window else self._previous
        if previous is None or previous.shot != frame.shot:
            return False
        weight = self._trust_between(frame, previous) * (PAST_WEIGHT * self.cfg.strength)
        return float(np.mean(weight > COVERAGE_TRUST)) >= MIN_COVERAGE

    def _trust_between(self, frame: _Frame, other: _Frame) -> np.ndarray:
        if other.index not in frame.trusts:
            forward = self._flow_between(frame, other)
            backward = self._flow_between(other, frame)
            frame.trusts[other.index] = trust(frame.small, other.small, forward, backward)
        return frame.trusts[other.index]

    def _flow_between(self, a: _Frame, b: _Frame) -> np.ndarray:
        if b.index not in a.flows:
            a.flows[b.index] = self._flow(a.small, b.small)
        return a.flows[b.index]

    def _emit(self) -> tuple[Any, np.ndarray]:
        # The frame and its look-ahead need the model's colour of every keyframe among them:
        # from the background thread, or run now, in batches.
        held = list(itertools.islice(self._window, self.cfg.radius + 1))
        for f in held:
            if f.future is not None:
                f.chroma, f.future = f.future.result(), None
        missing = [f for f in held if f.key and f.chroma is None]
        if missing:
            self._run_model(missing)
        started = time.thread_time()
        frame = self._window.popleft()
        strength = self.cfg.strength
        neighbours: list[tuple[_Frame, np.ndarray, float]] = []
        previous = self._previous
        if previous is not None and previous.shot == frame.shot and strength > 0:
            neighbours.append((previous, previous.result, PAST_WEIGHT * strength))  # type: ignore[arg-type]
        for distance, ahead in enumerate(self._window, start=1):
            if ahead.shot != frame.shot or distance > self.cfg.radius or strength <= 0:
                break
            if ahead.chroma is not None:
                neighbours.append(
                    (ahead, ahead.chroma, FUTURE_WEIGHT * strength * 0.5 ** (distance - 1))
                )
        result = self._blend(frame, neighbours)
        if result is None:  # not enough carried colour: this frame gets the model after all
            self.times.temporal += time.thread_time() - started
            self._run_model([frame])
            started = time.thread_time()
            frame.key = True
            result = self._blend(frame, neighbours)
        frame.result = (
            result  # carried on as it is: fitting it again on every frame would drain colour
        )
        frame.flows = {k: v for k, v in frame.flows.items() if k > frame.index}
        frame.trusts = {}  # only ever needed with this frame as the target
        self._previous = frame
        if self.fit is not None:
            result = self.fit(frame.luma, result)
        self.times.temporal += time.thread_time() - started
        return frame.payload, result

    def _blend(
        self, frame: _Frame, neighbours: list[tuple[_Frame, np.ndarray, float]]
    ) -> np.ndarray | None:
        h, w = frame.luma.shape
        sh, sw = frame.small.shape
        own = frame.chroma
        if not neighbours:
            return own
        total = np.zeros((sh, sw), np.float32)
        acc = np.zeros((sh, sw, 2), np.float32)
        strength = np.zeros((sh, sw), np.float32)  # the same weighted sum of |chroma|
        fallback = None
        for other, chroma, weight in neighbours:
            maps = flow_maps(self._flow_between(frame, other))
            small_chroma = cv2.resize(
                chroma.transpose(1, 2, 0), (sw, sh), interpolation=cv2.INTER_AREA
            )
            warped = remap(small_chroma, maps, cv2.INTER_CUBIC)
            if fallback is None:
                fallback = warped
            w_map = self._trust_between(frame, other) * weight
            acc += warped * w_map[..., None]
            # its strength warped as such: resampling the chroma itself shortens it where hue varies
            strength += remap(_length(small_chroma), maps, cv2.INTER_LINEAR) * w_map
            total += w_map
        if own is None:
            covered = float(np.mean(total > COVERAGE_TRUST))
            if self.cfg.keyframe_interval == 0 and covered < MIN_COVERAGE:
                return None
            # Fixed keyframes: where nothing is trusted, the nearest carried colour all the same.
            eps = 1e-3
            blended_small = (acc + eps * fallback) / (total + eps)[..., None]  # type: ignore[operator]
            mean_strength = (strength + eps * _length(fallback)) / (total + eps)  # type: ignore[arg-type]
            scale = _restore_strength(blended_small, mean_strength)
            if scale is not None:
                blended_small *= scale[..., None]
            blended = cv2.resize(blended_small, (w, h), interpolation=cv2.INTER_LINEAR)
            return np.ascontiguousarray(np.clip(blended, -1.0, 1.0).transpose(2, 0, 1))
        # Blend the neighbours' colour *difference* at flow size, then add it at working size:
        # the frame's own chroma keeps its full detail.
        own_small = cv2.resize(own.transpose(1, 2, 0), (sw, sh), interpolation=cv2.INTER_AREA)
        delta_small = (acc - own_small * total[..., None]) / (1.0 + total)[..., None]
        mean_strength = (_length(own_small) + strength) / (1.0 + total)
        scale = _restore_strength(own_small + delta_small, mean_strength)
        delta = cv2.resize(delta_small, (w, h), interpolation=cv2.INTER_LINEAR)
        blended = own + delta.transpose(2, 0, 1)
        if scale is not None:
            blended *= cv2.resize(scale, (w, h), interpolation=cv2.INTER_LINEAR)[None]
        return np.clip(blended, -1.0, 1.0).astype(np.float32)


def _length(chroma: np.ndarray) -> np.ndarray:
    """|chroma| of an (h, w, 2) map (cv2.magnitude: 25 against 58 us for np.hypot at 128x72)."""
    return cv2.magnitude(np.ascontiguousarray(chroma[..., 0]), np.ascontiguousarray(chroma[..., 1]))


def _restore_strength(blend: np.ndarray, mean_strength: np.ndarray) -> np.ndarray | None:
    """Per pixel, the factor (1 .. KEEP_STRENGTH) that brings the blend's strength |blend|
    (blend: (h, w, 2)) back toward ``mean_strength``, the weighted mean of the strengths it
    averaged; None where nothing needs raising (colours that agree lose nothing to a blend)."""
    have = _length(blend)
    scale = np.clip(mean_strength / np.maximum(have, 1e-4), 1.0, KEEP_STRENGTH).astype(np.float32)
    return None if float(scale.max()) <= 1.0 + 1e-6 else scale


def blend(
    lumas: np.ndarray, model: Model, cfg: TemporalConfig, fps: Fraction = Fraction(25)
) -> Iterator[np.ndarray]:
    """Chroma of a whole (short) sequence of working-size luminance frames, in order."""
    from .stages import make_color_stage

    stage = make_color_stage(cfg, model, fps)
    for luma in lumas:
        for _, chroma in stage.push(None, luma):
            yield chroma
    for _, chroma in stage.finish():
        yield chroma
