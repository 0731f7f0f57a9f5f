"""Shot cuts with PySceneDetect: the only module that imports it.

:class:`CutDetector` is fed frames one at a time (online, so that extract and restore need no
extra decoding pass); :func:`detect_scenes` runs it over a whole film. PySceneDetect returns
no cut for a single-shot clip: that is one scene here. Example::

    scenes = detect_scenes(Path("reel1.mp4"), SceneConfig())
    for scene in scenes:
        print(scene.start_frame, scene.end_frame, scene.start_time)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .config import SceneConfig
from .errors import SceneDetectionError
from .io.probe import probe
from .io.reader import FrameReader


@dataclass(frozen=True)
class Scene:
    """One shot: frames [start_frame, end_frame)."""

    index: int
    start_frame: int
    end_frame: int
    fps: Fraction

    @property
    def start_time(self) -> float:
        return float(self.start_frame / self.fps)

    @property
    def length(self) -> int:
        return self.end_frame - self.start_frame


class _GrayScore:
    """Lets a luma-only PySceneDetect detector take luminance frames (H, W) as they are.

    Its luma-only score is the mean change of brightness between frames (HSV's V); on a BGR
    frame it still converts to HSV and measures hue and saturation as well, weighted zero. A
    gray frame's brightness is the frame itself: the same score, without the conversion.
    """

    _last_gray: np.ndarray | None = None

    def _calculate_frame_score(self, timecode: object, frame_img: np.ndarray) -> float:
        if frame_img.ndim == 3:
            return super()._calculate_frame_score(timecode, frame_img)  # type: ignore[misc]
        last, self._last_gray = self._last_gray, frame_img
        if last is None:
            return 0.0
        return float(cv2.norm(frame_img, last, cv2.NORM_L1)) / frame_img.size


@functools.cache
def _gray_detector(base: type) -> type:
    """``base`` taking luminance frames (one class per base, made once)."""
    return type(f"Gray{base.__name__}", (_GrayScore, base), {})


class CutDetector:
    """Finds cuts in frames pushed in order (0, 1, 2, ...).

    Args:
        cfg: detector, threshold, minimum shot length.
        fps: the film's frame rate.
        luma_only: compare brightness only (B&W films: hue and saturation are noise there).
    """

    def __init__(self, cfg: SceneConfig, fps: Fraction, luma_only: bool) -> None:
        from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

        self._timecode = FrameTimecode
        self.cfg = cfg
        self.fps = fps
        self.luma_only = luma_only
        if cfg.detector == "content":
            kwargs = {"threshold": cfg.threshold} if cfg.threshold is not None else {}
            kind = _gray_detector(ContentDetector) if luma_only else ContentDetector
        else:
            kwargs = {"adaptive_threshold": cfg.threshold} if cfg.threshold is not None else {}
            kind = _gray_detector(AdaptiveDetector) if luma_only else AdaptiveDetector
        self._detector = kind(min_scene_len=cfg.min_scene_len, luma_only=luma_only, **kwargs)
        self._last = -1

    def _resized(self, image: np.ndarray) -> np.ndarray:
        """``image`` at the configured width (never enlarged)."""
        h, w = image.shape[:2]
        width = min(self.cfg.width, w)
        if width == w:
            return image
        return cv2.resize(
            image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_LINEAR
        )

    def small(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as the detector wants it: BGR at the configured width."""
        return np.ascontiguousarray(self._resized(rgb)[..., ::-1])

    def small_gray(self, gray: np.ndarray) -> np.ndarray:
        """A luminance frame (H, W) at the configured width, for :meth:`push_gray`."""
        return self._resized(gray)

    def push(self, rgb: np.ndarray) -> list[int]:
        """Add the next frame (RGB); returns frame numbers of cuts found so far (maybe earlier)."""
        return self.push_bgr(self.small(rgb))

    def push_gray(self, small_gray: np.ndarray) -> list[int]:
        """Add the next frame as luminance (H, W), already small: a luma-only detector scores
        it as it is, the others as BGR."""
        if not self.luma_only:
            small_gray = cv2.cvtColor(small_gray, cv2.COLOR_GRAY2BGR)
        return self.push_bgr(small_gray)

    def push_bgr(self, small_bgr: np.ndarray) -> list[int]:
        """Add the next frame, already small and BGR (see :meth:`small`)."""
        self._last += 1
        try:
            found = self._detector.process_frame(
                self._timecode(self._last, fps=self.fps), small_bgr
            )
        except Exception as err:  # PySceneDetect raises untyped errors
            raise SceneDetectionError(f"PySceneDetect failed at frame {self._last}: {err}") from err
        return [int(c.frame_num) for c in found]

    def finish(self) -> list[int]:
        """Cuts still held back by the detector after the last frame."""
        if self._last < 0:
            return []
        found = self._detector.post_process(self._timecode(self._last, fps=self.fps))
        return [int(c.frame_num) for c in found]


def scenes_from_cuts(cuts: list[int], frames: int, fps: Fraction) -> list[Scene]:
    """Shots between cuts (a clip with no cut is one shot)."""
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < frames) + [frames]
    return [
        Scene(i, a, b, fps)
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
        if b > a
    ]


def detect_scenes(path: Path, cfg: SceneConfig, luma_only: bool = False) -> list[Scene]:
    """All shots of a film, from one pass over a downscaled stream.

    Raises:
        VideoReadError: the film cannot be read.
        SceneDetectionError: PySceneDetect failed.
    """
    info = probe(path)
    width = min(cfg.width, info.width)
    height = max(2, round(info.height * width / info.width) // 2 * 2)
    detector = CutDetector(cfg, info.frame_rate, luma_only)
    cuts: list[int] = []
    with FrameReader(info, pix_fmt="rgb24", size=(width, height)) as reader:
        for frame in reader:
            cuts += detector.push(frame)
        frames = reader.frames_read
    cuts += detector.finish()
    return scenes_from_cuts(cuts, frames, info.frame_rate)
