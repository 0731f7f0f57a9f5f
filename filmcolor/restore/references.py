"""Reference colours: a colourist colours one frame of a shot, restore carries it through.

``restore --reference shots/`` (folders or pictures, repeatable):

1. :func:`collect_references` finds the pictures. In a folder made by ``filmcolor shots`` only
   what the colourist changed or added counts (the gray frames and the untouched starting
   points, whose checksums ``shots.json`` keeps, are not references); other files are ignored
   (said once).
2. :func:`index_film` reads the film once at a small size: a normalised thumbnail of each
   frame's luminance and the cuts. :func:`match_reference` places each picture at the frame
   whose luminance it matches (a name or ``shots.json`` may suggest one; a renamed or re-saved
   picture still finds its frame), or says which frame came closest and how close.
3. :class:`ReferenceColours` carries each reference's chroma forward and backward through its
   shot (:func:`carry_through`: each frame's optical flow straight to the reference frame, at
   :data:`CARRY_SIZE` lines, finer than the model's working size), with a confidence that
   falls where the reference, brought along that flow, does not match the frame (new objects,
   occlusions, a failed flow); two references in a shot are blended by distance. Restore then
   gives each frame the carried colour where it is trusted, and the model's colour, pulled
   toward the reference's palette (per luminance band), where it is not. Shots without a
   reference keep the model's colour.

``--reference-palette IMAGE[@SHOT]`` gives a shot (or the film) the palette of a colour picture
that is not one of its frames: dark, mid and light tones each take that picture's colours, on
top of the model's.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..color import (
    COLOUR_SPREAD,
    chroma_to_planes,
    colour_spread,
    luma_from_plane,
    planes_to_chroma,
    split_rgb,
)
from ..config import SceneConfig
from ..errors import UsageError
from ..io.files import IMAGE_SUFFIXES, load_rgb, sha256_of
from ..io.probe import VideoInfo
from ..io.reader import FrameReader, luma_pixel_format
from ..scenes import CutDetector, scenes_from_cuts
from .temporal import match_levels, pixel_grid

log = logging.getLogger(__name__)

THUMB = 32
"""Width of the luminance thumbnails references are matched on."""
MATCH_LIMIT = 0.2
"""Largest mean squared difference of two normalised thumbnails for a match (0: the same
picture; 2: unrelated)."""
CARRY_SIZE = 360
"""Short side at which reference colour is carried along the flow (a smaller film is enlarged:
the flow finds finer motion there)."""
BANDS = 8
"""Luminance bands of a palette."""
MATCH_SIGMA = 60.0
"""Brightness difference (of 255) between a frame and the reference brought onto it along the
flow at which trust in the carried colour falls to 1/e."""


@dataclass
class Reference:
    """A colour picture placed at a frame of the film."""

    path: Path
    rgb: np.ndarray  # at the film's size
    hint: int | None = None
    frame: int = -1
    score: float = 2.0
    shot: int = -1


@dataclass
class FilmIndex:
    """The film as the matching sees it: each frame's normalised thumbnail, and the cuts."""

    thumbs: np.ndarray  # (frames, THUMB * h) float16
    shape: tuple[int, int]  # the thumbnails' (h, w)
    cuts: list[int]
    frames: int
    shots: list[tuple[int, int]] = field(default_factory=list)  # [start, end)

    def shot_of(self, frame: int) -> int:
        return next(i for i, (a, b) in enumerate(self.shots) if a <= frame < b)


def _normalised(gray: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    small = cv2.resize(gray, (shape[1], shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
    std = float(small.std())
    return ((small - small.mean()) / max(std, 1.0)).ravel()


def collect_references(sources: list[Path]) -> list[tuple[Path, int | None]]:
    """The reference pictures of ``sources`` (folders or files), each with the frame its name
    or ``shots.json`` suggests (None when neither does).

    Raises:
        UsageError: a source is missing, or a folder holds no reference.
    """
    found: list[tuple[Path, int | None]] = []
    for source in sources:
        if source.is_file():
            found.append((source, _frame_in_name(source)))
            continue
        if not source.is_dir():
            raise UsageError(
                f"reference '{source}' does not exist; give colour pictures or a folder of them",
                fields=("reference",),
            )
        manifest = source / "shots.json"
        listed: dict[str, tuple[str, int]] = {}
        if manifest.is_file():
            try:
                for shot in json.loads(manifest.read_text()).get("shots", []):
                    listed[shot["gray"]] = (shot["gray_sha256"], int(shot["frame"]))
                    listed[shot["colour"]] = (shot["colour_sha256"], int(shot["frame"]))
            except (OSError, ValueError, KeyError) as err:
                raise UsageError(
                    f"'{manifest}' cannot be read ({err}); run filmcolor shots again",
                    fields=("reference",),
                ) from None
        ignored = []
        for path in sorted(source.iterdir()):
            if path.is_dir() or path.name in ("shots.json", "index.html"):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                ignored.append(path.name)
                continue
            if path.name in listed:
                checksum, frame = listed[path.name]
                if sha256_of(path) == checksum:
                    continue  # a gray frame, or a starting point nobody changed
                found.append((path, frame))
            else:
                found.append((path, _frame_in_name(path)))
        if ignored:
            log.info(
                "references: ignored %d file(s) that are not pictures in '%s' (%s)",
                len(ignored),
                source,
                ", ".join(ignored[:3]) + (", ..." if len(ignored) > 3 else ""),
            )
    return found


def _frame_in_name(path: Path) -> int | None:
    found = re.search(r"_f(\d{3,})", path.stem)
    return int(found.group(1)) if found else None


def load_reference(path: Path, info: VideoInfo) -> Reference | None:
    """A reference picture at the film's size; None (said) for a gray one.

    Raises:
        UsageError: unreadable, or another aspect than the film's.
    """
    try:
        rgb = load_rgb(path)
    except OSError:
        raise UsageError(
            f"reference '{path}' cannot be read as a picture; save it as PNG or JPEG",
            fields=("reference",),
        ) from None
    h, w = rgb.shape[:2]
    film_aspect, aspect = info.width / info.height, w / h
    if abs(aspect / film_aspect - 1.0) > 0.02:
        raise UsageError(
            f"reference '{path}' is {w}x{h} (aspect {aspect:.3f}), the film {info.width}x"
            f"{info.height} ({film_aspect:.3f}); give the whole frame, uncropped",
            fields=("reference",),
        )
    if colour_spread([cv2.resize(rgb, (min(w, 320), max(2, round(h * min(w, 320) / w))))]) < (
        COLOUR_SPREAD
    ):
        log.warning(
            "reference '%s' has no colour: it would erase the colour of its shot; it is left out",
            path,
        )
        return None
    if (w, h) != (info.width, info.height):
        rgb = cv2.resize(rgb, (info.width, info.height), interpolation=cv2.INTER_AREA)
    return Reference(path, rgb)


def index_film(info: VideoInfo, scenes: SceneConfig) -> FilmIndex:
    """One pass over the film at a small size: thumbnails and cuts."""
    width = min(scenes.width, info.width)
    height = max(2, round(info.height * width / info.width) // 2 * 2)
    shape = (max(2, round(THUMB * info.height / info.width)), THUMB)
    detector = CutDetector(scenes, info.frame_rate, luma_only=True)
    thumbs, cuts = [], []
    with FrameReader(
        info, pix_fmt=luma_pixel_format(info), size=(width, height), luma_only=True
    ) as reader:
        for y in reader:
            thumbs.append(_normalised(y, shape).astype(np.float16))
            cuts += detector.push_gray(y)
    cuts += detector.finish()
    frames = len(thumbs)
    index = FilmIndex(np.stack(thumbs) if thumbs else np.zeros((0, 1)), shape, cuts, frames)
    index.shots = [
        (s.start_frame, s.end_frame) for s in scenes_from_cuts(cuts, frames, info.frame_rate)
    ]
    return index


def match_reference(reference: Reference, index: FilmIndex, full_range: bool) -> None:
    """Place ``reference`` at its best-matching frame (its hint wins a near tie).

    Raises:
        UsageError: it matches no frame well enough (the best is said).
    """
    luma, _ = split_rgb(reference.rgb)
    gray = np.clip((luma + 1.0) * 127.5, 0, 255).astype(np.uint8)
    target = _normalised(gray, index.shape)
    scores = np.mean((index.thumbs.astype(np.float32) - target) ** 2, axis=1)
    best = int(np.argmin(scores))
    if reference.hint is not None and 0 <= reference.hint < index.frames:
        if scores[reference.hint] <= scores[best] + 0.02:
            best = reference.hint
    reference.frame, reference.score = best, float(scores[best])
    if reference.score > MATCH_LIMIT:
        raise UsageError(
            f"reference '{reference.path}' matches no frame of the film (closest: frame {best}, "
            f"score {reference.score:.2f}, a match is below {MATCH_LIMIT}); is it a frame of "
            "this film, uncropped?",
            fields=("reference",),
        )
    reference.shot = index.shot_of(best)


def check_conflicts(references: list[Reference]) -> list[Reference]:
    """One reference per frame: agreeing duplicates merged, disagreeing ones refused."""
    by_frame: dict[int, Reference] = {}
    for ref in references:
        other = by_frame.get(ref.frame)
        if other is None:
            by_frame[ref.frame] = ref
            continue
        _, a = split_rgb(cv2.resize(ref.rgb, (64, 36)))
        _, b = split_rgb(cv2.resize(other.rgb, (64, 36)))
        if float(np.abs(a - b).mean()) > 0.03:
            raise UsageError(
                f"references '{other.path}' and '{ref.path}' are both frame {ref.frame} but "
                "colour it differently; keep one",
                fields=("reference",),
            )
    return sorted(by_frame.values(), key=lambda r: r.frame)


def _bands(luma: np.ndarray) -> np.ndarray:
    """Each pixel's luminance band (0 .. BANDS - 1) of ``luma`` in [-1, 1]."""
    return np.clip(((luma + 1.0) * (0.5 * BANDS)).astype(np.int32), 0, BANDS - 1)


def palette(
    luma: np.ndarray,
    chroma: np.ndarray,
    weight: np.ndarray | None = None,
    bands: np.ndarray | None = None,
) -> np.ndarray:
    """Mean chroma in each of :data:`BANDS` luminance bands: (BANDS, 2); NaN where a band is
    empty. ``luma`` in [-1, 1] (H, W), ``chroma`` (2, H, W); ``bands``: ``luma``'s bands, when
    the caller has them."""
    bands = (_bands(luma) if bands is None else bands).ravel()
    if weight is None:
        total = np.bincount(bands, minlength=BANDS).astype(np.float64)
    else:
        weight = weight.ravel().astype(np.float64)
        total = np.bincount(bands, weight, BANDS)
    out = np.full((BANDS, 2), np.nan)
    for c in range(2):
        values = chroma[c].ravel() if weight is None else weight * chroma[c].ravel()
        sums = np.bincount(bands, values, BANDS)
        out[:, c] = np.where(total > 1e-3 * len(bands), sums / np.maximum(total, 1e-9), np.nan)
    return out


def pull_to_palette(
    luma: np.ndarray, chroma: np.ndarray, target: np.ndarray, strength: np.ndarray | float
) -> np.ndarray:
    """``chroma`` with each luminance band's mean moved toward ``target``'s (by ``strength``,
    a number or a per-pixel map); bands either side lack are left alone."""
    bands = _bands(luma)
    # The frame's own palette from every other pixel of every other line: its band means are
    # the same to a fraction of a level, in a quarter of the time.
    own = palette(luma[::2, ::2], chroma[:, ::2, ::2], bands=bands[::2, ::2])
    shift = np.nan_to_num(target - own).astype(np.float32)
    moved = np.empty(chroma.shape, np.float32)
    for c in range(2):  # each pixel's band's shift, looked up in a table of BANDS values
        moved[c] = chroma[c] + np.take(shift[:, c], bands) * strength
    return np.clip(moved, -1.0, 1.0, out=moved)


class ReferenceColours:
    """Carried reference colour for the frames of the referenced shots, and how it is applied.

    Args:
        info: the film.
        references: placed references (:func:`match_reference`).
        index: the film's shots.
        work: a folder for the carried colour (one file per shot, memory-mapped).
    """

    def __init__(self, info: VideoInfo, placed: Placement, work: Path) -> None:
        self.info = info
        self.index = placed.index
        references = placed.references
        self.given_palettes = placed.palettes
        short = min(info.width, info.height)
        scale = CARRY_SIZE / short
        self.fine = scale > 1.0  # enlarged: the flow at the carrying size itself
        self.size = (
            max(2, round(info.width * scale) // 2 * 2),
            max(2, round(info.height * scale) // 2 * 2),
        )
        self.work = work
        self.shots: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        self.palettes: dict[int, np.ndarray] = {}
        by_shot: dict[int, list[Reference]] = {}
        for ref in references:
            by_shot.setdefault(ref.shot, []).append(ref)
        # Each reference's two directions are carried at once, in threads of their own: DIS
        # runs on one core.
        with ThreadPoolExecutor(2, thread_name_prefix="filmcolor-carry") as self._pool:
            for shot, refs in by_shot.items():
                self._carry(shot, refs)

    def _read_shot(self, shot: int, start: int, end: int) -> np.ndarray:
        """The shot's luminance at the carrying size, in a memory-mapped file of the work
        folder (a long shot is never held in memory)."""
        fps = float(self.info.frame_rate)
        w, h = self.size
        lumas = self._array(f"shot{shot:05d}_luma", np.uint8, (end - start, h, w))
        n = 0
        with FrameReader(
            self.info,
            pix_fmt=luma_pixel_format(self.info),
            size=self.size,
            luma_only=True,
            start=(start / fps) if start else None,
            duration=(end - start) / fps,
        ) as reader:
            for y in reader:
                if n == end - start:
                    break
                lumas[n] = y
                n += 1
        return lumas[:n]

    def _array(self, name: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
        path = self.work / f"{name}.npy"
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

    def _carry(self, shot: int, refs: list[Reference]) -> None:
        start, end = self.index.shots[shot]
        lumas = self._read_shot(shot, start, end)
        n = len(lumas)
        w, h = self.size
        carried = self._array(f"shot{shot:05d}", np.float16, (n, 2, h, w))
        confidence = self._array(f"shot{shot:05d}_trust", np.float16, (n, h, w))
        placed = [(ref, ref.frame - start) for ref in refs if 0 <= ref.frame - start < n]
        layers = []  # each reference's colour and trust over the shot (memory-mapped)
        for number, (ref, k) in enumerate(placed):
            small = cv2.resize(ref.rgb, (w, h), interpolation=_resampling(ref.rgb.shape[1], w))
            luma, chroma = split_rgb(small)
            self.palettes.setdefault(shot, palette(luma, chroma))
            if len(placed) == 1:  # one reference: its colour and trust are the shot's
                colour, trust = carried, confidence
            else:
                colour = self._array(f"shot{shot:05d}_ref{number}", np.float16, (n, 2, h, w))
                trust = self._array(f"shot{shot:05d}_ref{number}_trust", np.float16, (n, h, w))
            colour[k], trust[k] = chroma, 1.0
            runs = [
                self._pool.submit(
                    carry_through, lumas, k, chroma, direction, colour, trust, self.fine
                )
                for direction in (1, -1)
            ]
            for run in runs:
                run.result()
            layers.append((k, colour, trust))
        if len(layers) > 1:  # two references or more: blended by distance, frame by frame
            for i in range(n):
                total = np.zeros((2, h, w), np.float32)
                weights = np.zeros((h, w), np.float32)
                best = np.zeros((h, w), np.float32)
                for k, colour, trust in layers:
                    t = trust[i].astype(np.float32)
                    weight = t / (1.0 + abs(i - k))
                    total += colour[i].astype(np.float32) * weight
                    weights += weight
                    best = np.maximum(best, t)
                carried[i] = total / np.maximum(weights, 1e-6)
                confidence[i] = best
        carried.flush()
        confidence.flush()
        for path in self.work.glob(f"shot{shot:05d}_*"):
            if path.name != f"shot{shot:05d}_trust.npy":
                path.unlink()  # the luminance and each reference's layer: no longer needed
        self.shots[shot] = (start, carried, confidence)

    def save(self) -> CarriedColours:
        """What restore (and its --jobs workers) need: written beside the carried colour."""
        view = CarriedColours(
            self.work,
            {shot: (start, len(carried)) for shot, (start, carried, _) in self.shots.items()},
            self.index.shots,
            {shot: p.tolist() for shot, p in self.palettes.items()},
            {shot: p.tolist() for shot, p in self.given_palettes.items()},
        )
        (self.work / "references.json").write_text(
            json.dumps(
                {
                    "shots": {str(k): v for k, v in view.carried.items()},
                    "bounds": view.bounds,
                    "palettes": {str(k): v for k, v in view.palettes.items()},
                    "given": {str(k): v for k, v in view.given.items()},
                }
            )
        )
        return view


def _resampling(source: int, target: int) -> int:
    """Area averaging to shrink, cubic to enlarge."""
    return cv2.INTER_AREA if target <= source else cv2.INTER_CUBIC


def carry_through(
    lumas: np.ndarray,
    k: int,
    chroma: np.ndarray,
    direction: int,
    colour_out: np.ndarray,
    trust_out: np.ndarray,
    fine: bool = False,
) -> None:
    """The reference's chroma (frame ``k``) carried to each frame of the shot on one side of it
    (``direction`` 1: after, -1: before), into ``colour_out[i]`` (2, H, W), with the trust of
    each pixel into ``trust_out[i]`` (H, W): ``lumas`` is the shot's luminance (N, H, W);
    ``fine``: see :func:`carry_flow`.

    Each frame's flow goes straight to the reference frame, so the reference is sampled once
    per frame (no blur piling up, no drift adding up over the chain); the flow found for the
    frame before is where the search starts (DIS refines it), which follows a camera move far
    from the reference. A pixel is trusted as far as the reference's brightness, brought along
    the same flow, matches the frame's (occlusions, new objects and a failed flow do not), and
    not where it comes from outside the reference's picture.
    """
    dis = carry_flow(fine)
    h, w = lumas[k].shape
    grid_x, grid_y = pixel_grid(h, w)
    reference = lumas[k].astype(np.float32)
    offset = np.zeros((h, w, 2), np.float32)

    def colour(i: int, offset: np.ndarray, frame: np.ndarray, matched: np.ndarray) -> None:
        x, y = grid_x + offset[..., 0], grid_y + offset[..., 1]
        carried = np.stack(
            [cv2.remap(c, x, y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE) for c in chroma]
        )
        brought = cv2.remap(matched, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = cv2.blur(np.abs(frame - brought), (3, 3))
        t = np.exp(-((diff / MATCH_SIGMA) ** 2))
        t[(x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)] = 0.0
        colour_out[i] = carried
        # Occlusion edges: the lowest trust nearby, so colour does not bleed across them.
        trust_out[i] = cv2.erode(t, np.ones((3, 3), np.uint8))

    # The flows one after another (each starts from the last); each frame's colour and trust
    # in a second thread meanwhile.
    with ThreadPoolExecutor(1, thread_name_prefix="filmcolor-carry-colour") as pool:
        pending = None
        i = k + direction
        while 0 <= i < len(lumas):
            frame = np.asarray(lumas[i])
            level = frame.astype(np.float32)
            matched = np.clip(match_levels(reference, level), 0, 255)
            offset = dis.calc(frame, matched.astype(np.uint8), offset.copy())
            if pending is not None:
                pending.result()  # one frame at a time in the other thread: memory stays flat
            pending = pool.submit(colour, i, offset, level, matched)
            i += direction
        if pending is not None:
            pending.result()


def carry_flow(fine: bool = False) -> cv2.DISOpticalFlow:
    """The optical flow that carries reference colour: DIS 'medium' with fewer iterations and
    a wider patch stride (a third less time for the same colour, measured on REDS). Its finest
    level is half the carrying size, or with ``fine`` the carrying size itself: for a film
    enlarged to be carried, the flow then resolves motion finer than the film's pixels (REDS,
    320x180, in ``pipelines/evaluate.py --references``: 32.54 dB against 32.35, for three times
    the flow's time)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if fine:
        dis.setFinestScale(0)
    dis.setPatchStride(4)
    dis.setGradientDescentIterations(12)
    dis.setVariationalRefinementIterations(3)
    return dis


@dataclass
class CarriedColours:
    """The carried reference colour of a restore, read from its folder (memory-mapped)."""

    folder: Path
    carried: dict[int, tuple[int, int]]  # shot -> (first frame, frames)
    bounds: list[tuple[int, int]]  # every shot's [start, end)
    palettes: dict[int, list]  # a referenced shot's palette (its reference's)
    given: dict[int, list] = field(default_factory=dict)  # --reference-palette: shot (-1: all)
    _open: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._starts = [start for start, _ in self.bounds]  # for the shot of a frame, by bisection

    @classmethod
    def load(cls, folder: Path) -> CarriedColours | None:
        """The carried colour in ``folder`` (None when there is none)."""
        path = folder / "references.json"
        if not path.is_file():
            return None
        state = json.loads(path.read_text())
        return cls(
            folder,
            {int(k): tuple(v) for k, v in state["shots"].items()},
            [tuple(b) for b in state["bounds"]],
            {int(k): v for k, v in state["palettes"].items()},
            {int(k): v for k, v in state.get("given", {}).items()},
        )

    def __getstate__(self) -> dict:  # the memory maps are opened again where it is unpickled
        return {**self.__dict__, "_open": {}}

    def _maps(self, shot: int) -> tuple[np.ndarray, np.ndarray]:
        if shot not in self._open:
            self._open[shot] = (
                np.load(self.folder / f"shot{shot:05d}.npy", mmap_mode="r"),
                np.load(self.folder / f"shot{shot:05d}_trust.npy", mmap_mode="r"),
            )
        return self._open[shot]

    def apply(self, frame: int, y: np.ndarray, uv: np.ndarray, full_range: bool) -> np.ndarray:
        """The U, V planes of film frame ``frame`` (uint8 (2, h, w), the model's) with the
        reference colour where it is carried and trusted, the model's pulled to the
        reference's palette elsewhere; other shots' planes unchanged."""
        shot = bisect.bisect_right(self._starts, frame) - 1
        if not (0 <= shot < len(self.bounds) and frame < self.bounds[shot][1]):
            shot = -1
        if shot not in self.carried:
            given = self.given.get(shot, self.given.get(-1))
            if given is None:
                return uv
            luma = _luma_at(y, uv.shape[1:], full_range)
            model = planes_to_chroma(uv, full_range)
            moved = pull_to_palette(luma, model, np.array(given, np.float64), 1.0)
            return chroma_to_planes(moved, full_range)
        start, count = self.carried[shot]
        i = frame - start
        if not 0 <= i < count:
            return uv
        carried, confidence = self._maps(shot)
        h, w = uv.shape[1:]
        how = _resampling(carried.shape[-1], w)
        ref = np.stack(
            [cv2.resize(c.astype(np.float32), (w, h), interpolation=how) for c in carried[i]]
        )
        trusted = cv2.resize(confidence[i].astype(np.float32), (w, h), interpolation=how)
        model = planes_to_chroma(uv, full_range)
        luma = _luma_at(y, (h, w), full_range)
        target = np.array(self.palettes[shot], np.float64)
        model = pull_to_palette(luma, model, target, 1.0 - trusted)
        mixed = trusted[None] * ref + (1.0 - trusted[None]) * model
        return chroma_to_planes(mixed, full_range)


def _luma_at(y: np.ndarray, shape: tuple[int, int], full_range: bool) -> np.ndarray:
    """A Y plane (uint8) at ``shape`` (h, w) as model luminance in [-1, 1]."""
    small = cv2.resize(y, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return luma_from_plane(small, full_range)


@dataclass
class Placement:
    """References placed at their frames, and palettes given to shots (or to the film: -1)."""

    references: list[Reference]
    index: FilmIndex
    palettes: dict[int, np.ndarray] = field(default_factory=dict)


def parse_palette(spec: str) -> tuple[Path, int | None]:
    """``IMAGE[@SHOT]`` as (picture, shot number counted from 1, or None for every shot)."""
    path, at, shot = spec.rpartition("@")
    if at and shot.isdigit() and int(shot) >= 1:
        return Path(path), int(shot)
    return Path(spec), None


def palette_of(path: Path) -> np.ndarray:
    """The palette (:func:`palette`) of a colour picture.

    Raises:
        UsageError: it cannot be read, or has no colour.
    """
    try:
        rgb = load_rgb(path, 256)
    except OSError:
        raise UsageError(
            f"palette picture '{path}' cannot be read; save it as PNG or JPEG",
            fields=("reference_palette",),
        ) from None
    if colour_spread([rgb]) < COLOUR_SPREAD:
        raise UsageError(
            f"palette picture '{path}' has no colour to give; give a colour picture",
            fields=("reference_palette",),
        )
    luma, chroma = split_rgb(rgb)
    return palette(luma, chroma)


def place_references(
    sources: list[Path], info: VideoInfo, scenes: SceneConfig, palettes: tuple[str, ...] = ()
) -> Placement | None:
    """The reference pictures of ``sources`` found, checked and placed at their frames, and the
    palette pictures read (one small pass over the film); None when there is nothing to do
    (every picture gray, say).

    Raises:
        UsageError: a picture is unreadable, of another aspect, matches no frame, two
            disagree about one frame, or a palette's shot is not in the film.
    """
    paths = collect_references(sources)
    if sources and not paths:
        log.warning(
            "no reference found in %s: the model colours every shot", ", ".join(map(str, sources))
        )
    loaded = []
    for path, hint in paths:  # every picture checked before the film is read
        ref = load_reference(path, info)
        if ref is not None:
            ref.hint = hint
            loaded.append(ref)
    given = [(parse_palette(spec), spec) for spec in palettes]
    colours = {spec: palette_of(path) for (path, _), spec in given}
    if not loaded and not given:
        return None
    index = index_film(info, scenes)
    for ref in loaded:
        match_reference(ref, index, info.full_range)
    placement = Placement(check_conflicts(loaded), index)
    for ref in placement.references:
        log.info(
            "reference '%s': frame %d (shot %d, match %.3f)",
            ref.path.name,
            ref.frame,
            ref.shot + 1,
            ref.score,
        )
    for (_, shot), spec in given:
        if shot is not None and shot > len(index.shots):
            raise UsageError(
                f"palette '{spec}': the film has {len(index.shots)} shots, not {shot}; number "
                "them as filmcolor shots does (from 1)",
                fields=("reference_palette",),
            )
        placement.palettes[-1 if shot is None else shot - 1] = colours[spec]
    return placement


def carry_references(info: VideoInfo, placed: Placement, work: Path) -> CarriedColours:
    """Carry placed references through their shots into ``work`` (see :class:`CarriedColours`)."""
    work.mkdir(parents=True, exist_ok=True)
    return ReferenceColours(info, placed, work).save()


def prepare_references(
    sources: list[Path],
    info: VideoInfo,
    scenes: SceneConfig,
    work: Path | None = None,
    palettes: tuple[str, ...] = (),
) -> CarriedColours | None:
    """:func:`place_references` then :func:`carry_references` (into a temporary folder when
    ``work`` is None)."""
    placed = place_references(sources, info, scenes, palettes)
    if placed is None:
        return None
    return carry_references(info, placed, work or Path(tempfile.mkdtemp(prefix="filmcolor-ref-")))
