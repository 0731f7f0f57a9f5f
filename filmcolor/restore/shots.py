"""A film's shots for a colourist: one representative frame each, gray and coloured, and a
contact sheet.

:func:`write_shots` reads the film once (its luminance), finds the cuts (PySceneDetect, as
restore does), and picks in each shot the sharpest well-exposed frame away from the cuts and
fades. For each shot it writes the gray frame and the model's colorization of it (the starting
point to paint over in any image editor), named by shot, frame number and timecode; a
``shots.json`` listing every shot with the checksums of the files written; and ``index.html``,
a contact sheet that works offline: every shot's thumbnails before/after, its time range and
whether it has a reference (a colour frame the colourist changed, or another picture given for
it). Run it again on the same folder to refresh the page: edited pictures are kept. Example::

    shots = write_shots(Path("film.mp4"), Path("shots"), ShotsConfig())
    print(len(shots), shots[0].colour)
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..color import luma_from_plane, merge_rgb
from ..config import ShotsConfig
from ..errors import UsageError
from ..io.files import atomic_write, sha256_of, write_image
from ..io.probe import VideoInfo, probe, scan_timing
from ..io.reader import SplitFrameReader
from ..scenes import CutDetector
from .colorizer import Colorizer

log = logging.getLogger(__name__)

MANIFEST = "shots.json"
PAGE = "index.html"
THUMB_WIDTH = 320
"""Width of the contact sheet's thumbnails."""
MARGIN = 0.25
"""Seconds after a cut and before the next one from which no frame is picked (transitions)."""
HOLD = 48
"""Frames a candidate is kept at full size while a cut could still be found before it (the cut
detector reports cuts a few frames late)."""


@dataclass
class Shot:
    """One shot and its representative frame (frames [start, end), times in seconds)."""

    index: int
    start: int
    end: int
    frame: int
    start_time: float
    end_time: float
    time: float
    gray: str = ""
    colour: str = ""
    thumb: str = ""
    colour_sha256: str = ""
    """Checksum of the colour picture as written: another checksum means the colourist
    changed it, and it is a reference."""
    gray_sha256: str = ""


@dataclass
class _Candidate:
    index: int
    score: float
    y: np.ndarray | None  # the full-size Y plane (dropped when it can no longer win)


def timecode(seconds: float) -> str:
    """HH-MM-SS.mmm (no colons: file names on every system)."""
    millis = round(seconds * 1000)
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}-{m:02d}-{s:02d}.{ms:03d}"


def frame_score(small: np.ndarray) -> float:
    """How good a representative a frame is (its small gray copy): sharp (variance of the
    Laplacian) and well exposed (contrast, mid-tones; a fade or a dark frame scores low)."""
    sharp = float(cv2.Laplacian(small, cv2.CV_32F).var())
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(small))
    exposure = min(1.0, std / 40.0) * max(0.0, 1.0 - abs(mean - 120.0) / 140.0)
    return np.log1p(sharp) * exposure


def pick_frames(
    info: VideoInfo, cfg: ShotsConfig, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[Shot, np.ndarray]]:
    """The shots of a film, each with its representative frame (the film's Y plane, as restore
    reads it), given as soon as the shot is over, from one decoding pass: ffmpeg sends every
    frame small (the cuts, the scores) and only the candidate frames' Y plane at full size,
    through a second pipe."""
    fps = float(info.frame_rate)
    stride = max(1, round(fps / cfg.samples_per_second))
    margin = round(MARGIN * fps)
    detector = CutDetector(cfg.scenes, info.frame_rate, luma_only=True)
    width = min(cfg.scenes.width, info.width)
    small_size = (width, max(2, round(info.height * width / info.width) // 2 * 2))
    start, candidates = 0, []
    number = 0

    def finish(end: int, kept: list[_Candidate]) -> tuple[Shot, np.ndarray] | None:
        nonlocal number
        inside = [c for c in kept if start + margin <= c.index < end - margin]
        pool = [c for c in (inside or kept) if c.y is not None]
        if not pool:
            return None
        best = max(pool, key=lambda c: c.score)
        shot = Shot(
            index=number,
            start=start,
            end=end,
            frame=best.index,
            start_time=round(start / fps, 3),
            end_time=round(end / fps, 3),
            time=round(best.index / fps, 3),
        )
        number += 1
        return shot, best.y

    count = 0
    reader = SplitFrameReader(
        info, small_size, (info.width, info.height), stride, luma=True
    ).start()
    with contextlib.closing(reader):
        for index, small, large in reader:
            for cut in detector.push_gray(small):
                if cut > start:
                    done = finish(cut, [c for c in candidates if c.index < cut])
                    start, candidates = cut, [c for c in candidates if c.index >= cut]
                    if done:
                        yield done
            if large is not None:
                candidates.append(_Candidate(index, frame_score(small), large))
                _thin(candidates, index)
            count = index + 1
            if progress and count % 50 == 0:
                progress(50)
    for cut in detector.finish():
        if start < cut < count:
            done = finish(cut, [c for c in candidates if c.index < cut])
            start, candidates = cut, [c for c in candidates if c.index >= cut]
            if done:
                yield done
    if progress:
        progress(count % 50)
    done = finish(count, candidates)
    if done:
        yield done


def _thin(candidates: list[_Candidate], now: int) -> None:
    """Keep full-size frames only for the best old candidate and the recent ones (a late cut
    may still move those to the next shot)."""
    old = [c for c in candidates if c.index < now - HOLD and c.y is not None]
    if len(old) > 1:
        best = max(old, key=lambda c: c.score)
        for c in old:
            if c is not best:
                c.y = None


def write_shots(
    film: Path,
    out: Path,
    cfg: ShotsConfig,
    progress: Callable[[int], None] | None = None,
) -> list[Shot]:
    """Write ``out``: the shots' gray and colour frames, thumbnails, shots.json, index.html.

    A folder that already holds the shots of this film is refreshed: pictures the colourist
    changed are kept (unless ``cfg.overwrite``), the page shows them as references.

    Raises:
        UsageError: ``out`` holds the shots of another film, or is a file.
        VideoReadError: the film cannot be read.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"'{out}' is a file; give a folder for the shots", fields=("out",))
    info = scan_timing(probe(film))
    previous = _read_manifest(out)
    if previous and previous.get("film") != film.name and not cfg.overwrite:
        raise UsageError(
            f"'{out}' holds the shots of '{previous.get('film')}', not of '{film.name}'; choose "
            "another folder (or overwrite)",
            fields=("out", "overwrite"),
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "thumbs").mkdir(exist_ok=True)
    engine = Colorizer(cfg.model, device="cpu")
    kept = {s["index"]: s for s in (previous or {}).get("shots", [])}

    def write(shot: Shot, y_plane: np.ndarray) -> Shot:
        stem = f"shot{shot.index + 1:04d}_f{shot.frame:06d}_{timecode(shot.time)}"
        shot.gray, shot.colour = f"{stem}_gray.png", f"{stem}_colour.png"
        shot.thumb = f"thumbs/{stem}.jpg"
        luma = luma_from_plane(y_plane, info.full_range)
        gray = merge_rgb(luma, np.zeros((2, *luma.shape), np.float32))
        colour = merge_rgb(luma, engine.chroma_for_luma(luma[None])[0])
        before = kept.get(shot.index)
        edited = (
            before is not None
            and before.get("colour") == shot.colour
            and (out / shot.colour).is_file()
            and sha256_of(out / shot.colour) != before.get("colour_sha256")
        )
        write_image(out / shot.gray, gray)
        if edited and not cfg.overwrite:
            shot.colour_sha256 = before["colour_sha256"]  # the starting point's, as written
            log.info("shot %d: kept the changed '%s'", shot.index + 1, shot.colour)
        else:
            write_image(out / shot.colour, colour)
            shot.colour_sha256 = sha256_of(out / shot.colour)
        shot.gray_sha256 = sha256_of(out / shot.gray)
        h, w = gray.shape[:2]
        size = (THUMB_WIDTH, max(2, round(h * THUMB_WIDTH / w)))
        pair = [cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (gray, colour)]
        write_image(out / shot.thumb, np.hstack(pair), 85)
        return shot

    # Each finished shot is coloured and written in a thread of its own while the film is read
    # on (onnxruntime, OpenCV and the decoder run side by side).
    shots: list[Shot] = []
    with ThreadPoolExecutor(1, thread_name_prefix="filmcolor-shots") as pool:
        pending: list[Future[Shot]] = []
        for shot, y_plane in pick_frames(info, cfg, progress):
            pending.append(pool.submit(write, shot, y_plane))
            while len(pending) > 4:  # a few frames waiting at most: memory stays flat
                shots.append(pending.pop(0).result())
        shots += [job.result() for job in pending]
    manifest = {
        "film": film.name,
        "frames": info.estimated_frames,
        "fps": str(Fraction(info.frame_rate)),
        "width": info.width,
        "height": info.height,
        "shots": [asdict(s) for s in shots],
    }
    with atomic_write(out / MANIFEST) as partial:
        partial.write_text(json.dumps(manifest, indent=1))
    write_page(out)
    return shots


def _read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def references_in(out: Path) -> dict[int, Path]:
    """The shots of a shots folder that have a reference: shot index -> the changed colour
    picture (its checksum differs from the one written)."""
    manifest = _read_manifest(out) or {}
    found = {}
    for shot in manifest.get("shots", []):
        path = out / shot.get("colour", "")
        if path.is_file() and sha256_of(path) != shot.get("colour_sha256"):
            found[int(shot["index"])] = path
    return found


def write_page(out: Path) -> Path:
    """``out/index.html``: the contact sheet of a shots folder (no script, no network)."""
    manifest = _read_manifest(out)
    if manifest is None:
        raise UsageError(f"'{out}' has no {MANIFEST}; run filmcolor shots first")
    references = references_in(out)
    film = html.escape(manifest["film"])
    cards = []
    for shot in manifest["shots"]:
        number = shot["index"] + 1
        has = int(shot["index"]) in references
        status = "reference: changed by you" if has else "no reference: the model's colour"
        span = f"{_clock(shot['start_time'])} &ndash; {_clock(shot['end_time'])}"
        frames = f"frames {shot['start']}&ndash;{shot['end'] - 1}"
        picked = f"picked frame {shot['frame']} at {_clock(shot['time'])}"
        links = (
            f'<a href="{html.escape(shot["gray"])}">gray</a> &middot; '
            f'<a href="{html.escape(shot["colour"])}">colour</a>'
        )
        cards.append(
            "\n".join(
                [
                    f'<figure class="shot{" ref" if has else ""}" id="shot{number}" '
                    f'data-shot="{number}" data-reference="{"yes" if has else "no"}">',
                    f'<img src="{html.escape(shot["thumb"])}" '
                    f'alt="shot {number}: gray and coloured" width="{2 * THUMB_WIDTH}">',
                    f"<figcaption><b>shot {number}</b> {span} ({frames}), {picked}<br>",
                    f'{links} &middot; <span class="status">{status}</span></figcaption>',
                    "</figure>",
                ]
            )
        )
    width = 2 * THUMB_WIDTH
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{film}: {len(cards)} shots</title>
<style>
body {{ font: 14px sans-serif; margin: 1em; background: #222; color: #ddd; }}
h1 {{ font-size: 18px; }}
.sheet {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; padding: 6px; background: #333; border: 2px solid #333; width: {width}px; }}
figure.ref {{ border-color: #e8b339; }}
img {{ display: block; max-width: 100%; height: auto; }}
a {{ color: #9cf; }}
.status {{ color: #aaa; }}
figure.ref .status {{ color: #e8b339; }}
</style></head><body>
<h1>{film} &mdash; {len(cards)} shots, {len(references)} with a reference</h1>
<p>Left: the film's frame; right: the model's colour, the starting point. Paint over a
<code>_colour.png</code> in any image editor (keep its size), then
<code>filmcolor restore {film} out.mp4 --reference {html.escape(out.name)}/</code>.
Run <code>filmcolor shots</code> again to refresh this page.</p>
<div class="sheet">
{chr(10).join(cards)}
</div></body></html>
"""
    target = out / PAGE
    with atomic_write(target) as partial:
        partial.write_text(page)
    return target


def _clock(seconds: float) -> str:
    return timecode(seconds).replace("-", ":")
