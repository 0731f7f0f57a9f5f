"""Turn a pile of films into the two training folders: trainA (B&W) and trainB (colour).

For each film: a few frames seeked across it decide its domain (colour spread; a tinted or
sepia film counts as B&W) and its letterbox/pillarbox crop; then one pass decodes it at the
training size, finds the cuts (PySceneDetect, online) and keeps a few frames per shot, away
from the cuts, skipping black, white, faded and flat frames and near-duplicates. Films are
held out whole in testA/testB. Example::

    films = [Path("old_movies"), Path("modern_movies")]
    summary = extract(films, Path("data/films"), ExtractConfig())
    print(summary.kept, summary.dropped)

The output folder holds ``manifest.jsonl`` (one line per image: source, hash, shot, time,
frame, domain, saturation, crop) and ``films.jsonl`` (one line per finished film). A film
whose content key is in films.jsonl is skipped on a rerun; an interrupted film is redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..color import colour_spread
from ..config import ExtractConfig
from ..errors import FilmcolorError, UsageError, VideoReadError
from ..io.files import find_videos, write_image
from ..io.probe import VideoInfo, guess_size, probe
from ..io.reader import SplitFrameReader
from ..scenes import CutDetector


def content_key(path: Path, chunk: int = 1 << 20) -> str:
    """A content hash of a film: size plus 1 MiB from its start, middle and end (SHA-256).

    Reading whole films would cost a second pass over the disk; these samples tell apart any
    two different files in practice, and a renamed or copied film keeps its key.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        for offset in (0, max(0, size // 2 - chunk // 2), max(0, size - chunk)):
            handle.seek(offset)
            digest.update(handle.read(chunk))
    return digest.hexdigest()


@dataclass(frozen=True)
class Crop:
    """A crop box (x, y, width, height) in frame pixels."""

    x: int
    y: int
    width: int
    height: int


@dataclass
class FilmReport:
    """What extract did with one film."""

    source: str
    key: str
    domain: str = ""
    split: str = ""
    saturation: float = 0.0
    crop: dict[str, int] | None = None
    frames: int = 0
    shots: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class ExtractSummary:
    """Totals over all films of one `extract` call."""

    films: int = 0
    skipped_done: int = 0
    failed: list[str] = field(default_factory=list)
    shots: int = 0
    kept: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)


class BarFinder:
    """Finds letterbox/pillarbox bars: rows and columns dark in every frame of the film.

    Fed the luminance plane of every decoded frame (a running maximum per row and column,
    cheap), so the crop is measured on the whole film, not guessed from a few pictures.
    """

    def __init__(self, threshold: int = 40) -> None:
        self.threshold = threshold
        self.rows: np.ndarray | None = None
        self.cols: np.ndarray | None = None

    def add(self, luma: np.ndarray) -> None:
        rows, cols = luma.max(axis=1), luma.max(axis=0)
        if self.rows is None or self.cols is None:
            self.rows, self.cols = rows, cols
        else:
            np.maximum(self.rows, rows, out=self.rows)
            np.maximum(self.cols, cols, out=self.cols)

    def crop(self) -> Crop | None:
        """The box inside the bars (even coordinates), or None when there are no bars."""
        if self.rows is None or self.cols is None:
            return None
        rows, cols = self.rows > self.threshold, self.cols > self.threshold
        if not rows.any() or not cols.any():
            return None
        h, w = len(rows), len(cols)
        top, bottom = int(np.argmax(rows)), int(h - np.argmax(rows[::-1]))
        left, right = int(np.argmax(cols)), int(w - np.argmax(cols[::-1]))
        # Even sizes, and ignore slivers of a pixel or two (encoders' edge noise).
        top, left = (top + 1) // 2 * 2 if top > 2 else 0, (left + 1) // 2 * 2 if left > 2 else 0
        bottom = bottom // 2 * 2 if h - bottom > 2 else h
        right = right // 2 * 2 if w - right > 2 else w
        if (
            (top, left, bottom, right) == (0, 0, h, w)
            or bottom - top < h // 4
            or right - left < w // 4
        ):
            return None
        return Crop(left, top, right - left, bottom - top)


def _frame_problem(rgb: np.ndarray) -> str | None:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    mean, std = float(gray.mean()), float(gray.std())
    if mean < 24:
        return "black"
    if mean > 235:
        return "white"
    if std < 12:
        return "flat"
    return None


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class _Candidate:
    frame: int
    image: np.ndarray


def _pick_evenly(items: list[Any], count: int) -> list[Any]:
    if len(items) <= count:
        return items
    positions = np.linspace(0, len(items) - 1, count + 2)[1:-1]
    return [items[int(round(p))] for p in positions]


def _base_stride(cfg: ExtractConfig, fps: float) -> int:
    """Frames between two candidate frames: ``--every`` seconds."""
    return max(1, round(cfg.every * fps))


class _ShotSampler:
    """Keeps candidate frames of the current shot and picks the kept ones at each cut."""

    def __init__(self, cfg: ExtractConfig, fps: float) -> None:
        self.cfg = cfg
        self.margin = max(1, round(cfg.margin * fps))
        self.base_stride = _base_stride(cfg, fps)
        self.stride = self.base_stride
        self.candidates: list[_Candidate] = []
        self.shot_start = 0
        self.dropped: Counter = Counter()

    def offer(self, index: int, small_bgr: np.ndarray, full: Callable[[], np.ndarray]) -> None:
        """Consider frame ``index``, one of every ``base_stride`` frames of the film (checked on
        its small copy; ``full()`` gives the picture)."""
        if (index // self.base_stride) % (self.stride // self.base_stride):
            return
        problem = _frame_problem(small_bgr[..., ::-1])
        if problem:
            self.dropped[problem] += 1
            return
        self.candidates.append(_Candidate(index, full()))
        if len(self.candidates) > 8 * self.cfg.per_shot:  # bounded memory in very long shots
            self.candidates = self.candidates[::2]
            self.stride *= 2

    def close(self, end: int) -> list[_Candidate]:
        """The shot [shot_start, end) is over: the frames to keep from it."""
        inside = [
            c
            for c in self.candidates
            if self.shot_start + self.margin <= c.frame < end - self.margin
        ]
        self.dropped["near a cut"] += len(self.candidates) - len(inside)
        chosen = _pick_evenly(inside, self.cfg.per_shot)
        self.dropped["shot quota"] += len(inside) - len(chosen)
        self.candidates = []
        self.shot_start = end
        self.stride = self.base_stride
        return chosen


def _decide_domain(cfg: ExtractConfig, spread: float) -> str:
    if cfg.domain == "bw":
        return "A"
    if cfg.domain == "color":
        return "B"
    return "B" if spread > cfg.saturation_threshold else "A"


def split_for(key: str, fraction: float) -> str:
    return "test" if int(key[:8], 16) / 0xFFFFFFFF < fraction else "train"


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def extract_film(
    path: Path, out: Path, cfg: ExtractConfig, progress: Callable[[int], None] | None = None
) -> tuple[FilmReport, list[dict[str, Any]]]:
    """Extract one film into ``out`` (its images and its manifest lines, not yet recorded).

    One decoding pass: every frame feeds the cut detectors (small copies), the bar finder
    (its luminance) and the shot sampler; the frames chosen in each shot are staged at a
    working scale, and cropped, resized and written when the film's domain and bars are known.
    With ``cfg.repair``, a B&W film is first repaired into a lossless copy that is read instead
    (the manifest still names the film).

    Raises:
        FilmcolorError: the film cannot be read (the caller reports it and goes on).
    """
    if cfg.repair.enabled and cfg.domain != "color":
        repaired = _repaired_copy(path, out, cfg)
        if repaired is not None:
            try:
                return _extract_from(repaired, path, out, cfg, progress)
            finally:
                repaired.unlink(missing_ok=True)
    return _extract_from(path, path, out, cfg, progress)


def _repaired_copy(path: Path, out: Path, cfg: ExtractConfig) -> Path | None:
    """A B&W film repaired (``cfg.repair``) into a lossless copy in the staging folder; None
    for a colour film (its frames are taken as they are)."""
    from ..config import RestoreConfig
    from ..io.reader import sample_frames
    from ..restore.pipeline import restore

    info = probe(path)
    if cfg.domain == "auto" and colour_spread(sample_frames(info)) > cfg.saturation_threshold:
        return None
    copy = out / ".staging" / f"{_stem(path, content_key(path))}.repaired.mkv"
    copy.parent.mkdir(parents=True, exist_ok=True)
    restore(
        path,
        copy,
        RestoreConfig(
            repair=cfg.repair, colour=False, crf=0, preset="ultrafast", overwrite=True, jobs=1
        ),
    )
    return copy


def _extract_from(
    path: Path,
    source: Path,
    out: Path,
    cfg: ExtractConfig,
    progress: Callable[[int], None] | None,
) -> tuple[FilmReport, list[dict[str, Any]]]:
    """Extract the frames of ``path``, recorded as those of ``source`` (the film itself, where
    ``path`` is its repaired copy)."""
    # ffmpeg starts decoding from OpenCV's guess of the film's size and rate while ffprobe runs:
    # the two process starts overlap (much of a short clip's decoding time).
    reader: SplitFrameReader | None = None
    guess = guess_size(path)
    if guess:
        width, height, rate = guess
        small, stage, _ = _stream_sizes(cfg, width, height)
        reader = SplitFrameReader.before_probe(
            path, (width, height), small, stage, _base_stride(cfg, rate)
        )
    try:
        if reader is not None:
            reader.start()
        info = probe(path)
        sampler = _ShotSampler(cfg, float(info.frame_rate))
        small, stage, stage_scale = _stream_sizes(cfg, info.width, info.height)
        if reader is not None and not (
            reader.confirm(info) and reader.stride == sampler.base_stride
        ):
            # the guess was wrong (another size, a variable frame rate): start afresh
            reader.close()
            reader = None
        if reader is None:
            reader = SplitFrameReader(info, small, stage, sampler.base_stride).start()
    except BaseException:
        if reader is not None:
            reader.close()
        raise
    with contextlib.closing(reader):
        return _extract_frames(source, out, cfg, info, reader, sampler, stage_scale, progress)


def _stream_sizes(
    cfg: ExtractConfig, width: int, height: int
) -> tuple[tuple[int, int], tuple[int, int], float]:
    """The two streams' frame sizes: small for cut detection, and the candidates' staging size
    and scale (1.5x the output size, scaled by ffmpeg, in C; the crop and the final resize are
    done from there once the film's bars are known)."""
    detect_w = min(cfg.scenes.width, width) // 2 * 2
    detect_h = _even(height * detect_w / width)
    stage_scale = min(1.0, cfg.size * 1.5 / min(width, height))
    return (
        (detect_w, detect_h),
        (_even(width * stage_scale), _even(height * stage_scale)),
        stage_scale,
    )


def _extract_frames(
    path: Path,
    out: Path,
    cfg: ExtractConfig,
    info: VideoInfo,
    reader: SplitFrameReader,
    sampler: _ShotSampler,
    stage_scale: float,
    progress: Callable[[int], None] | None,
) -> tuple[FilmReport, list[dict[str, Any]]]:
    key = content_key(path)
    report = FilmReport(source=str(path), key=key)
    fps = float(info.frame_rate)
    staging = out / ".staging" / _stem(path, key)
    shutil.rmtree(staging, ignore_errors=True)  # an interrupted earlier attempt is redone
    staging.mkdir(parents=True)
    # Cuts: the union of a luminance-only detector (B&W films: hue and saturation are noise)
    # and a full-colour one (colour films: cuts between shots of equal brightness).
    detectors = [CutDetector(cfg.scenes, info.frame_rate, luma_only=flag) for flag in (True, False)]
    pending: set[int] = set()  # cuts a dropped detector still held back
    bars = BarFinder()
    spreads: list[float] = []
    staged: list[tuple[int, int]] = []  # (shot, frame)
    shots = 0
    last_cut = 0

    def close_shot(end: int) -> None:
        nonlocal shots
        for cand in sampler.close(end):
            np.save(staging / f"{cand.frame:07d}.npy", cand.image)
            staged.append((shots, cand.frame))
        shots += 1

    def take(rgb: np.ndarray, small_bgr: np.ndarray) -> np.ndarray:
        spreads.append(
            colour_spread([small_bgr[..., ::-1]])
        )  # measured small: it is resized anyway
        if len(detectors) == 2 and len(spreads) in (4, 12, 24):
            # Once the film is plainly B&W or plainly colour (its first 4 candidate frames all
            # agree, or the median of 12 or 24 frames), keep only the detector made for it: half
            # the per-frame work. Cuts found so far are kept.
            low, high = (
                (min(spreads), max(spreads)) if len(spreads) == 4 else (np.median(spreads),) * 2
            )
            if low > 2 * cfg.saturation_threshold:
                pending.update(detectors.pop(0).finish())
            elif high < cfg.saturation_threshold / 4:
                pending.update(detectors.pop(1).finish())
        return rgb

    # ffmpeg sends every frame small (cut detection, checks) and, through a second pipe, only
    # every candidate frame larger: the pipes carry a fraction of the film's pixels.
    frames = 0
    for index, small, large in reader:
        frames = index + 1
        cuts = sorted({c for d in detectors for c in d.push_bgr(small)} | pending)
        pending.clear()
        for cut in cuts:
            if cut - last_cut >= cfg.scenes.min_scene_len:
                close_shot(cut)
                last_cut = cut
        if large is not None:
            bars.add(cv2.cvtColor(large, cv2.COLOR_RGB2GRAY))
            sampler.offer(index, small, lambda f=large, s=small: take(f, s))
        if progress and index % 50 == 49:
            progress(50)
    for cut in sorted({c for d in detectors for c in d.finish()}):
        if cut - last_cut >= cfg.scenes.min_scene_len and cut < frames:
            close_shot(cut)
            last_cut = cut
    close_shot(frames)
    if progress:
        progress(frames % 50)
    if frames == 0:
        raise VideoReadError(f"no frame could be decoded from '{path}'; the file is damaged")
    spread = float(np.median(spreads)) if spreads else 0.0
    domain = _decide_domain(cfg, spread)
    split = split_for(key, cfg.test_fraction)
    crop = bars.crop()  # in staged-frame pixels
    report.domain, report.split, report.saturation = domain, split, round(spread, 2)
    report.crop = (
        {k: int(round(v / stage_scale / 2) * 2) for k, v in asdict(crop).items()} if crop else None
    )
    report.frames, report.shots = frames, shots
    dropped = Counter(sampler.dropped)
    # Crop and resize the staged frames; drop near-duplicates (static shots cut back and forth,
    # repeated titles) within the film.
    stem = _stem(path, key)
    thumbs: list[np.ndarray] = []
    finals: list[tuple[int, int, np.ndarray]] = []
    for shot, frame in staged:
        image = np.load(staging / f"{frame:07d}.npy")
        if crop:
            image = image[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width]
        h, w = image.shape[:2]
        scale = cfg.size / min(h, w)
        image = cv2.resize(
            image, (_even(w * scale), _even(h * scale)), interpolation=cv2.INTER_AREA
        )
        thumb = _thumbnail(image)
        if any(float(np.abs(thumb - t).mean()) < cfg.duplicate_distance for t in thumbs[-200:]):
            dropped["duplicate"] += 1
            continue
        thumbs.append(thumb)
        finals.append((shot, frame, image))
    chosen = _pick_evenly(finals, cfg.max_per_film)
    dropped["film quota"] += len(finals) - len(chosen)
    lines = []
    for shot, frame, image in chosen:
        name = f"{stem}_s{shot:04d}_f{frame:07d}.jpg"
        write_image(staging / name, image, cfg.quality)
        lines.append(
            {
                "image": f"{split}{domain}/{name}",
                "source": str(path),
                "source_hash": key,
                "shot": shot,
                "frame": frame,
                "time": round(frame / fps, 3),
                "domain": domain,
                "saturation": report.saturation,
                "crop": report.crop,
            }
        )
    report.kept = len(lines)
    report.dropped = {k: v for k, v in dropped.items() if v}
    return report, lines


def _stem(path: Path, key: str) -> str:
    """File-name stem of a film's images (its name and content key: unique and readable)."""
    return f"{path.stem[:40]}-{key[:8]}"


def _finish_film(out: Path, report: FilmReport, lines: list[dict[str, Any]]) -> None:
    """Move a film's staged images into place and record it (manifest, then films.jsonl)."""
    staging = out / ".staging" / _stem(Path(report.source), report.key)
    target = out / f"{report.split}{report.domain}"
    target.mkdir(parents=True, exist_ok=True)
    for line in lines:
        name = Path(line["image"]).name
        os.replace(staging / name, target / name)
    shutil.rmtree(staging, ignore_errors=True)
    with open(out / "manifest.jsonl", "a") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)
    with open(out / "films.jsonl", "a") as handle:
        handle.write(json.dumps(asdict(report)) + "\n")


def done_keys(out: Path) -> set[str]:
    """Content keys of the films already extracted into ``out``."""
    films = out / "films.jsonl"
    if not films.is_file():
        return set()
    keys = set()
    for line in films.read_text().splitlines():
        try:
            keys.add(json.loads(line)["key"])
        except (json.JSONDecodeError, KeyError):
            continue  # a line cut by a crash: that film is redone
    return keys


def _run_one(path: Path, out: Path, cfg: ExtractConfig) -> tuple[FilmReport, list[dict[str, Any]]]:
    try:
        return extract_film(path, out, cfg)
    except FilmcolorError as err:
        return FilmReport(source=str(path), key="", error=str(err)), []


def _extract_on_cluster(
    todo: list[Path],
    out: Path,
    cfg: ExtractConfig,
    address: str,
    cpus: float,
    record: Callable[[FilmReport, list[dict[str, Any]]], None],
) -> None:
    """Each film a task on the Ray cluster at ``address``; a task whose node is lost runs
    again elsewhere (Ray), a film that fails is reported and the others go on."""
    from ..cluster import Cluster, TaskLost

    out = out.absolute()
    with Cluster.connect(address) as cluster:
        refs = {cluster.submit(_run_one, (path.absolute(), out, cfg), cpus): path for path in todo}
        while refs:
            finished, _ = cluster.wait(list(refs))
            for ref in finished:
                path = refs.pop(ref)
                try:
                    report, lines = cluster.result(ref)
                except TaskLost as err:
                    report, lines = (
                        FilmReport(source=str(path), key="", error=f"'{path}': {err}"),
                        [],
                    )
                record(report, lines)


def extract(
    inputs: list[str | Path],
    out: Path,
    cfg: ExtractConfig,
    on_film: Callable[[FilmReport], None] | None = None,
    progress: Callable[[int], None] | None = None,
    cluster: str | None = None,
    cpus: float = 1.0,
) -> ExtractSummary:
    """Extract every film among ``inputs`` into ``out`` (see the module docstring).

    Args:
        inputs: files, folders, globs.
        out: the data folder (trainA, trainB, testA, testB, manifest.jsonl, films.jsonl).
        cfg: sampling, cleaning, domains, jobs.
        on_film: called with each film's report as it finishes (or fails).
        progress: called with the number of frames decoded since the last call (jobs = 1).
        cluster: a Ray address (``auto``, ``host:port``, ``ray://host:port``): each film is
            extracted by a task on the cluster's nodes (``cpus`` CPUs each), which stage its
            frames in ``out``; this process moves them into place and records the film. The
            films and ``out`` must be reachable under the same paths from every node.

    Raises:
        UsageError: an input does not exist.
        VideoReadError: no film could be extracted at all.
        MissingDependencyError: ``cluster`` without ray installed.
        ClusterError: the cluster cannot be reached.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(
            f"data folder '{out}' is a file; give out a folder (it is made if missing)",
            fields=("out",),
        )
    videos = find_videos(inputs)
    if not videos:
        raise UsageError(f"no video files found in {', '.join(map(str, inputs))}")
    out.mkdir(parents=True, exist_ok=True)
    done = done_keys(out)
    summary = ExtractSummary()
    todo = []
    for path in videos:
        try:
            key = content_key(path)
        except OSError as err:
            summary.failed.append(f"'{path}': {err.strerror}")
            continue
        if key in done:
            summary.skipped_done += 1
        else:
            todo.append(path)
            done.add(key)  # the same film twice in the inputs is extracted once

    def record(report: FilmReport, lines: list[dict[str, Any]]) -> None:
        if report.error:
            summary.failed.append(report.error)
        else:
            _finish_film(out, report, lines)
            summary.films += 1
            summary.shots += report.shots
            summary.kept[f"{report.split}{report.domain}"] += report.kept
            summary.dropped.update(report.dropped)
        if on_film:
            on_film(report)

    if cluster:
        _extract_on_cluster(todo, out, cfg, cluster, cpus, record)
    elif cfg.jobs == 1:
        for path in todo:
            try:
                report, lines = extract_film(path, out, cfg, progress)
            except FilmcolorError as err:
                report, lines = FilmReport(source=str(path), key="", error=str(err)), []
            record(report, lines)
    else:
        with ProcessPoolExecutor(max_workers=cfg.jobs) as pool:
            futures = [pool.submit(_run_one, path, out, cfg) for path in todo]
            for future in as_completed(futures):
                record(*future.result())
    shutil.rmtree(out / ".staging", ignore_errors=True)
    if summary.films == 0 and summary.skipped_done == 0:
        reasons = "; ".join(summary.failed[:3])
        raise VideoReadError(f"no film could be extracted into '{out}': {reasons}")
    return summary
