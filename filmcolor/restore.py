"""Restore a film: every frame colorized, everything else carried over untouched.

Data flow: ``probe -> FrameReader -> colour stage (ColorizeEngine + temporal blending, reset at
cuts) -> FrameWriter`` (see docs/architecture.md). The luminance plane of each frame passes
through unchanged; only chroma is computed, at the model's working size, blended along the
optical flow with its neighbours (filmcolor.temporal) and upsampled. The film is encoded in
segments (the unit of ``--resume``), joined at the end with the input's other streams
stream-copied. The output is written under a temporary name beside the target and renamed
only when it is complete.
Example::

    result = restore(Path("chaplin.mp4"), Path("chaplin_color.mp4"), RestoreConfig())
    print(result.frames, result.fps)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .color import COLOUR_SPREAD, chroma_to_planes, colour_spread, yuv_to_rgb
from .config import RestoreConfig
from .engine import ColorizeEngine
from .errors import UsageError, VideoReadError, VideoWriteError
from .temporal import StageTimes, make_color_stage
from .video import (
    BackgroundWriter,
    EncoderSettings,
    FrameReader,
    FrameWriter,
    Prefetch,
    StreamPlan,
    VideoInfo,
    check_output,
    chroma_size,
    count_video_packets,
    default_codec,
    luma_pixel_format,
    output_pixel_format,
    plan_streams,
    probe,
    require_ffmpeg,
    sample_frames,
    scan_timing,
    stop_children,
)

log = logging.getLogger(__name__)

ProgressFactory = Callable[[int | None], "Progress"]


class Progress:
    """Receives progress; the CLI passes a tqdm bar, the library default is silent."""

    def update(self, frames: int) -> None:
        """``frames`` more frames are done (ignored here)."""

    def close(self) -> None:
        """The job is over (nothing to close here)."""


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did."""

    output: Path
    frames: int
    seconds: float
    device: str
    model: Path
    streams: list[StreamPlan] = field(default_factory=list)
    decode_errors: int = 0
    preview: Path | None = None
    model_seconds: float = 0.0
    """CPU seconds of the model (its thread's time: it runs beside the flow work)."""
    temporal_seconds: float = 0.0
    """CPU seconds of the temporal work (flow, trust, blending, cut detection)."""
    model_frames: int = 0
    cuts: list[int] = field(default_factory=list)
    resumed_from: int = 0

    @property
    def fps(self) -> float:
        """Frames restored per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def temporary_path(output: Path) -> Path:
    """The name restore writes to before the final rename (same folder, same extension)."""
    return output.with_name(f".{output.stem}.filmcolor-part{output.suffix}")


def check_paths(source: Path, output: Path, overwrite: bool) -> None:
    """Refuse output == input, an existing output, and a missing or read-only output folder."""
    if output.resolve() == source.resolve() or (output.exists() and output.samefile(source)):
        raise UsageError(f"output '{output}' is the input file; choose another output name")
    if output.is_dir():
        raise UsageError(f"output '{output}' is a folder; give a file name such as film_color.mp4")
    if output.exists() and not overwrite:
        raise UsageError(f"output '{output}' already exists; pass --overwrite to replace it")
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise VideoWriteError(f"output folder '{folder}' does not exist; create it first (mkdir -p)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VideoWriteError(
            f"cannot write in output folder '{folder}' (permission denied); choose a writable folder"
        )


MIN_FRAME_SIDE = 16
"""The smallest frame side restore takes (optical flow needs 12 pixels, the model 8)."""

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def check_preview(source: Path, output: Path, preview: Path) -> None:
    """Refuse a preview sheet path that is not a picture name, is the output or the input, or
    cannot be written: before any work, so that a finished film is never followed by an error."""
    if preview.suffix.lower() not in PICTURE_SUFFIXES:
        raise UsageError(
            f"preview '{preview}' is not a picture name; name the before/after sheet .png or .jpg"
        )
    if preview.resolve() == output.resolve():
        raise UsageError(f"preview '{preview}' is the output film; give the sheet its own name such as sheet.png")
    check_paths(source, preview, True)


def check_input(info: VideoInfo, cfg: RestoreConfig) -> VideoInfo:
    """Refuse what restore cannot make a whole film of, before any work: a truncated file
    (unless ``cfg.accept_truncated``), a start past the end, frames too small."""
    source = info.path
    if min(info.width, info.height) < MIN_FRAME_SIDE:
        raise VideoReadError(
            f"'{source}' has frames of {info.width}x{info.height} pixels; restore takes frames of at "
            f"least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} (scale it up first: ffmpeg -i IN -vf scale=-2:64 OUT)"
        )
    if info.truncated:
        assert info.declared_duration is not None
        held = (
            f"'{source}' ends at {info.duration or 0:.1f} s ({info.frame_count} frames) of the "
            f"{info.declared_duration:.1f} s it declares: the file is truncated or damaged"
        )
        if not cfg.accept_truncated:
            raise VideoReadError(
                f"{held}; copy it again from its source, or pass --accept-truncated to restore "
                "the part it holds"
            )
        log.warning("%s; restoring the %.1f s it holds (--accept-truncated)", held, info.duration or 0)
    if cfg.start is not None and info.duration is not None and cfg.start >= info.duration:
        raise UsageError(
            f"--start {cfg.start:g} is past the end of '{source}', which is only {info.duration:.1f} s "
            "long; choose an earlier start"
        )
    return info


def _warn_if_colour(info: VideoInfo) -> None:
    """Say so when the film is already in colour: restore would replace its colour with the
    model's guess."""
    try:
        spread = colour_spread(sample_frames(info))
        if spread > COLOUR_SPREAD:
            log.warning(
                "'%s' is already in colour (colour spread %.1f; B&W films measure below %.1f): restore "
                "replaces its colour with the model's guess; a colour film needs nothing done "
                "(--saturation 0 makes it black and white)", info.path, spread, COLOUR_SPREAD,
            )  # fmt: skip
    except Exception as err:  # a judgement for a warning only: the restore itself reads the film
        log.debug("could not judge whether '%s' is in colour: %s", info.path, err)


def _check_length(source: Path, info: VideoInfo, cfg: RestoreConfig, frames: int, expected: int | None) -> None:
    """Refuse a film that decoded to measurably fewer frames than its packets promise (frames
    the decoder could not make, a file that changed while it was read): never a silently
    shorter film. ``cfg.accept_truncated`` turns that into a warning."""
    if not expected:
        return
    exact = cfg.start is None and cfg.duration is None and info.frame_count and not info.variable_frame_rate
    fps = float(info.frame_rate)
    if frames >= expected - (1 if exact else max(2, round(0.1 * fps))):
        return
    text = (
        f"'{source}' decoded to {frames} frames ({frames / fps:.1f} s) of the {expected} "
        f"({expected / fps:.1f} s) it holds: frames are damaged or missing"
    )
    if not cfg.accept_truncated:
        raise VideoReadError(
            f"{text}; copy it again from its source, or pass --accept-truncated to restore what can be decoded"
        )
    log.warning("%s; kept the %d frames decoded (--accept-truncated)", text, frames)


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Own ``output`` for one restore: a second restore to the same name (its work folder, its
    temporary file) stops at once with the first one's process id.

    An advisory lock (``flock``) on ``.NAME.filmcolor-lock`` beside the output: the system
    releases it when the process ends, even by ``kill -9``, so a stale file never blocks.
    """
    import fcntl

    path = output.with_name(f".{output.stem}.filmcolor-lock")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise _disk_error(err, path) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(
                f"output '{output}' is being written by pid {holder} (another filmcolor restore); "
                "wait for it to finish or choose another output name"
            ) from None
        try:  # the holder before us may have removed the file between our open and our lock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _expected_frames(info: VideoInfo, cfg: RestoreConfig) -> int | None:
    total = info.estimated_frames
    if cfg.start is None and cfg.duration is None:
        return total
    if info.duration is None:
        return None
    end = info.duration if cfg.duration is None else min(info.duration, (cfg.start or 0) + cfg.duration)
    return max(0, round((end - (cfg.start or 0)) * float(info.frame_rate)))


class _PreviewSampler:
    """Keeps a few (before, after) frames spread over the film for the preview sheet."""

    def __init__(self, expected: int | None, count: int = 4, height: int = 240) -> None:
        expected = expected or 1
        self.wanted = sorted({int((i + 0.5) * expected / count) for i in range(count)})
        self.height = height
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.fallback: tuple[np.ndarray, np.ndarray] | None = None

    def offer(self, index: int, y: np.ndarray, uv: np.ndarray, full_range: bool) -> None:
        """Frame ``index``: its Y plane and the U, V planes written (any chroma size)."""
        if index in self.wanted or (index == 0 and not self.pairs):
            h, w = y.shape
            full_uv = cv2.resize(uv.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
            before = np.stack([y, np.full_like(y, 128), np.full_like(y, 128)])
            after = np.concatenate([y[None], full_uv], axis=0)
            pair = (self._thumb(before, full_range), self._thumb(after, full_range))
            if index in self.wanted:
                self.pairs.append(pair)
            else:
                self.fallback = pair

    def _thumb(self, planes: np.ndarray, full_range: bool) -> np.ndarray:
        rgb = yuv_to_rgb(planes, full_range)
        h, w = rgb.shape[:2]
        width = max(1, round(w * self.height / h))
        return cv2.resize(rgb, (width, self.height), interpolation=cv2.INTER_AREA)

    def write(self, path: Path) -> Path | None:
        pairs = self.pairs or ([self.fallback] if self.fallback else [])
        if not pairs:
            return None
        gap = 8
        rows = [np.concatenate([b, np.full((b.shape[0], gap, 3), 255, np.uint8), a], axis=1) for b, a in pairs]
        sheet = np.concatenate(
            [np.concatenate([r, np.full((gap, r.shape[1], 3), 255, np.uint8)], axis=0) for r in rows], axis=0
        )
        return write_image(path, sheet)


def write_image(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB picture atomically (temporary name, then rename)."""
    tmp = path.with_name(f".{path.stem}.filmcolor-part{path.suffix or '.png'}")
    ok, data = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise VideoWriteError(f"cannot encode picture '{path}'; name it .png or .jpg")
    try:
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise VideoWriteError(f"cannot write '{path}' ({err.strerror}); choose a writable folder") from err
    return path


def restore(
    source: Path,
    output: Path,
    cfg: RestoreConfig,
    progress: ProgressFactory | None = None,
    preview: Path | None = None,
) -> RestoreResult:
    """Colorize a film and write it with all its other streams.

    Args:
        source: the B&W film (never modified).
        output: the colour film to write; its extension picks the container.
        cfg: model, device, working size, encoder, trimming.
        progress: called with the expected frame count; returns an object with
            ``update(n)`` and ``close()`` (e.g. a tqdm bar).
        preview: optional PNG path for a before/after sheet of four frames.

    Returns:
        A :class:`RestoreResult`.

    Raises:
        FilmcolorError: any user-facing failure; the output is then absent.
    """
    started = time.perf_counter()
    source, output = Path(source), Path(output)
    require_ffmpeg()
    check_paths(source, output, cfg.overwrite)
    if preview is not None:
        check_preview(source, output, preview)
    info = check_input(scan_timing(probe(source)), cfg)
    colour_check = threading.Thread(target=_warn_if_colour, args=(info,), name="filmcolor-colour")
    colour_check.start()  # a few small frames decoded while the model loads
    try:
        with output_lock(output):
            check_paths(source, output, cfg.overwrite)  # again: another run may have finished it meanwhile
            return _restore_locked(source, output, cfg, info, progress, preview, started)
    finally:
        colour_check.join()


def _restore_locked(
    source: Path,
    output: Path,
    cfg: RestoreConfig,
    info: VideoInfo,
    progress: ProgressFactory | None,
    preview: Path | None,
    started: float,
) -> RestoreResult:
    engine = ColorizeEngine(cfg.model, cfg.device, cfg.size, cfg.threads, cfg.precision, cfg.saturation)
    settings = EncoderSettings(cfg.codec or default_codec(output), cfg.crf, cfg.preset)
    check_output(output, settings, output_pixel_format(info.width, info.height, info.full_range))
    plan = plan_streams(info, output)
    for item in plan:
        if item.action != "copy":
            log.warning("%s", item.reason)
    if info.variable_frame_rate:
        log.warning(
            "'%s' has a variable frame rate; the output has a constant %s fps (%.3f), frames "
            "are repeated or dropped to keep the timing (docs/restore.md)",
            source,
            info.frame_rate,
            float(info.frame_rate),
        )
    expected = _expected_frames(info, cfg)
    jobs_auto = cfg.jobs == 0
    cfg = _plan_jobs(cfg, info, expected, preview is not None, engine.device)
    sampler = _PreviewSampler(expected) if preview is not None else None
    tmp = temporary_path(output)
    work = work_folder(output)
    job = _open_job(work, _fingerprint(source, output, cfg, engine, settings, info), cfg, info)
    done_before = resumed_from = sum(job.segments)
    bar = progress(expected) if progress else Progress()
    if done_before:
        log.info("resuming '%s' after %d finished frames (%d segments)", output, done_before, len(job.segments))
        bar.update(done_before)
    run = _SegmentRun(cfg, info, engine, settings, work, job, sampler, bar)
    try:
        if cfg.jobs > 1:
            _parallel_segments(run, source, expected, fallback=jobs_auto)
        done_before = sum(job.segments)  # the sequential reader goes on from here (to the end)
        fps = float(info.frame_rate)
        read_start = (cfg.start or 0.0) + ((done_before - 0.5) / fps if done_before else 0.0)
        read_duration = None
        if cfg.duration is not None:
            read_duration = cfg.duration - (done_before / fps if done_before else 0.0)
        with FrameReader(
            info, pix_fmt=run.pix_fmt, start=read_start or None, duration=read_duration, luma_only=True
        ) as reader:
            run.consume(reader)
            frames = done_before + run.frames
            if frames == 0:
                raise VideoReadError(
                    f"no frame could be decoded from '{source}'"
                    + (" in the chosen --start/--duration" if cfg.start or cfg.duration else "")
                    + f"; the file is damaged or empty [ffmpeg: {reader.stderr_text()[-200:]}]"
                )
            _check_length(source, info, cfg, frames, expected)
            decode_errors = reader.decode_errors
        # Join the finished segments (stream copy) and mux the input's other streams beside them.
        listing = work / "segments.txt"
        missing = [i for i in range(len(job.segments)) if not (work / _segment_name(i)).is_file()]
        if missing:
            raise VideoWriteError(
                f"segment {missing[0] + 1} of '{output}' is missing from '{work}' (removed while the "
                "restore ran); run the restore again"
            )
        try:
            listing.write_text("".join(f"file '{_segment_name(i)}'\n" for i in range(len(job.segments))))
        except OSError as err:
            raise _disk_error(err, work) from err
        FrameWriter(tmp, info, plan, settings, cfg.start, cfg.duration, segments=listing).mux()
        joined = count_video_packets(tmp)
        if joined != frames:
            raise VideoWriteError(
                f"the joined film '{output}' holds {joined} of its {frames} restored frames (a segment in "
                f"'{work}' is damaged or was changed while the restore ran); run the restore again"
            )
        os.replace(tmp, output)
        shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if cfg.resume and job.segments:
            log.warning(
                "stopped; %d finished frames are kept in '%s': run the same command with --resume "
                "to continue", sum(job.segments), work,
            )  # fmt: skip
        else:
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        bar.close()
    written_preview = sampler.write(preview) if sampler is not None and preview else None
    if decode_errors:
        log.warning("'%s': %d decoding errors were reported; see above", source, decode_errors)
    return RestoreResult(
        output=output,
        frames=frames,
        seconds=time.perf_counter() - started,
        device=engine.device,
        model=engine.model_path,
        streams=plan,
        decode_errors=decode_errors,
        preview=written_preview,
        model_seconds=run.times.model,
        temporal_seconds=run.times.temporal,
        model_frames=run.times.model_frames,
        cuts=run.cuts,
        resumed_from=resumed_from,
    )


def auto_jobs(device: str = "cpu") -> int:
    """``--jobs auto``: on a CPU, one segment process per 4 cores from 8 cores up (at most 8),
    else 1; with the model on a GPU, 1.

    Each process runs its own decoder, colour stage, model and encoder. On a 16-core machine
    4 processes restored 13-17% faster than one with the model on the CPU, but 9-19% slower
    with it on the GPU, where one process already keeps the CPU busy with its encoder
    (docs/benchmarks.md).
    """
    if device == "cuda":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores < 8 else min(8, cores // 4)


def _plan_jobs(
    cfg: RestoreConfig, info: VideoInfo, expected: int | None, with_preview: bool, device: str = "cpu"
) -> RestoreConfig:
    """Resolves ``jobs=0`` (auto) and ``segment_seconds=None`` (auto) for this film.

    Segments run in parallel only for a whole film with a constant frame rate and a known
    length, without a preview; otherwise jobs is 1. Segments are 60 s; with several
    processes on a film too short to give each about four of them they shrink (2 s at least),
    so that the processes share the work evenly.
    """
    jobs = cfg.jobs or auto_jobs(device)
    reasons = [
        (cfg.start is not None or cfg.duration is not None, "--start/--duration"),
        (info.variable_frame_rate, "a variable frame rate"),
        (not expected, "an unknown length"),
        (with_preview, "--preview"),
    ]
    why = [text for bad, text in reasons if bad]
    parallel = jobs > 1 and not why
    if jobs > 1 and why and cfg.jobs:  # auto goes quietly to one process
        log.info("--jobs %d: restoring one segment at a time (%s)", jobs, ", ".join(why))
    if not parallel:
        jobs = 1
    seconds = cfg.segment_seconds
    if seconds is None:
        seconds = 60.0
        if parallel:
            film = int(expected or 0) / float(info.frame_rate)
            seconds = min(60.0, max(2.0, round(film / (4 * jobs) * 2) / 2))
    if parallel:
        log.info("restoring in %d processes, segments of %g s (--jobs, --segment-seconds)", jobs, seconds)
    return replace(cfg, jobs=jobs, segment_seconds=seconds)


def _parallel_segments(run: _SegmentRun, source: Path, expected: int | None, fallback: bool = False) -> None:
    """``--jobs N``: the film's segments restored N at a time in worker processes.

    Each segment has its own colour stage anyway (the unit of --resume), so segments in
    parallel give the same film as one after the other; each worker has its own reader
    (seeking to the segment's first frame, as --resume does), model and encoder. Finished
    segments are recorded in film order. Called when :func:`_plan_jobs` planned several
    processes; anything left after the planned segments (a length declared short) is restored
    by the sequential reader that follows. With ``fallback`` (``--jobs auto``),
    worker processes that cannot start or that stop leave the rest of the film to that
    sequential reader, with a warning, instead of failing the restore.
    """
    cfg, info, job = run.cfg, run.info, run.job
    size = job.segment_frames
    if not expected:
        return  # _plan_jobs plans processes only for a known length
    if any(n != size for n in job.segments):
        log.info("--jobs %d: the film's last segment is already finished (--resume)", cfg.jobs)
        return
    first, last = len(job.segments), -(-int(expected) // size)
    if last - first < 2:
        return
    import concurrent.futures
    import concurrent.futures.process
    import multiprocessing

    # On a CPU each worker gets its share of the model threads (the rest decode and encode);
    # on a GPU the engine's own default (one).
    threads = cfg.threads or (max(1, (os.cpu_count() or 2) // (2 * cfg.jobs)) if run.engine.device == "cpu" else 0)
    worker_cfg = replace(cfg, threads=threads)
    # spawn, not fork: this process already runs onnxruntime and reader threads.
    try:
        pool = concurrent.futures.ProcessPoolExecutor(
            cfg.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_setup
        )
    except (OSError, NotImplementedError) as err:
        if not fallback:
            raise VideoWriteError(
                f"--jobs {cfg.jobs}: worker processes cannot be started here ({err}); use --jobs 1"
            ) from err
        log.warning("--jobs auto: worker processes cannot be started here (%s); one segment at a time", err)
        return
    futures = [
        pool.submit(_segment_job, source, worker_cfg, info, run.settings, run.work, number, size)
        for number in range(first, last)
    ]
    try:
        for number, future in zip(range(first, last), futures, strict=True):
            try:
                written, full, times, cuts = future.result()
            except concurrent.futures.process.BrokenProcessPool as err:
                if fallback:
                    log.warning(
                        "--jobs auto: a worker process stopped at segment %d (out of memory, or killed); "
                        "going on one segment at a time", number + 1,
                    )  # fmt: skip
                    _stop_workers(pool)
                    return
                raise VideoWriteError(
                    f"a --jobs worker process stopped while restoring segment {number + 1} of '{source}' "
                    "(out of memory, or killed); rerun with fewer --jobs, or --jobs 1 "
                    "(from Python, call restore under 'if __name__ == \"__main__\":')"
                ) from err
            if written:
                run.finished(written)
                run.bar.update(written)
                run.times.add(times)
                run.cuts += cuts
            if not full:
                break
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: Any, grace: float = 8.0) -> None:
    """Terminates a pool's worker processes (they may be in the middle of a segment), and kills
    those still there after ``grace`` seconds.

    SIGTERM unwinds a segment (its ffmpeg processes stopped) or ends an idle worker at once;
    but a worker ended while it was handing back a result leaves the pool's result queue
    locked, and the next worker to hand one back waits on that lock for ever (the pool's
    shutdown with it): seen under load when one segment failed while others finished.
    """
    from multiprocessing.connection import wait

    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    pending = {process.sentinel: process for process in processes}
    deadline = time.monotonic() + grace
    while pending and (left := deadline - time.monotonic()) > 0:
        for sentinel in wait(list(pending), timeout=left):
            pending.pop(sentinel)  # type: ignore[call-overload]
    for process in pending.values():
        process.kill()


def _segment_job(
    source: Path, cfg: RestoreConfig, info: VideoInfo, settings: EncoderSettings, work: Path, number: int, size: int
) -> tuple[int, bool, StageTimes, list[int]]:
    """One segment in a worker process (``--jobs``): its own reader, model and encoder."""
    global _IN_SEGMENT
    _IN_SEGMENT = True
    try:
        return _restore_segment(source, cfg, info, settings, work, number, size)
    except KeyboardInterrupt:
        stop_children()  # one started just as the signal came would outlive this worker
        os._exit(130)  # stopped by restore (or its death): cleaned up, nobody waits for a result
    finally:
        _IN_SEGMENT = False


def _restore_segment(
    source: Path, cfg: RestoreConfig, info: VideoInfo, settings: EncoderSettings, work: Path, number: int, size: int
) -> tuple[int, bool, StageTimes, list[int]]:
    key = (cfg.model, cfg.device, cfg.size, cfg.threads, cfg.precision, cfg.saturation)
    if key not in _WORKER_ENGINES:  # one model session per worker, kept for its next segments
        _WORKER_ENGINES.clear()
        _WORKER_ENGINES[key] = ColorizeEngine(*key)
    engine = _WORKER_ENGINES[key]
    run = _SegmentRun(cfg, info, engine, settings, work, _Job("", size), None, Progress())
    offset = number * size
    start = (offset - 0.5) / float(info.frame_rate) if offset else None
    with FrameReader(info, pix_fmt=run.pix_fmt, start=start, luma_only=True) as reader:
        frames = Prefetch(reader)
        try:
            written, full = run.segment(iter(frames), number, offset)
        finally:
            frames.close()
    return written, full, run.times, run.cuts


_IN_SEGMENT = False
"""In a --jobs worker: True while it restores a segment (SIGTERM then unwinds it)."""
_WORKER_ENGINES: dict[tuple, ColorizeEngine] = {}
"""In a --jobs worker: its model session."""


def _interrupted(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
    if _IN_SEGMENT:
        raise KeyboardInterrupt  # unwinds the segment: its ffmpeg processes are stopped
    os._exit(130)  # idle: nothing to clean up


def _worker_setup() -> None:
    """In each --jobs worker: SIGTERM unwinds the segment (its ffmpeg processes stopped), and
    it comes when restore's process dies, even by kill -9 (Linux), so that no worker goes on
    writing a segment that a --resume run is about to write again."""
    import ctypes
    import signal

    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches restore, which stops the workers
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def work_folder(output: Path) -> Path:
    """Where restore keeps the finished segments of ``output`` until the final mux."""
    return output.with_name(f".{output.stem}.filmcolor-work")


def _segment_name(index: int) -> str:
    return f"seg_{index:05d}.nut"


@dataclass
class _Job:
    """A restore in segments: what is finished (``job.json`` in the work folder)."""

    fingerprint: str
    segment_frames: int
    segments: list[int] = field(default_factory=list)  # frames in each finished segment

    def save(self, work: Path) -> None:
        target = work / "job.json"
        partial = work / ".job.json.part"
        state = {"fingerprint": self.fingerprint, "segment_frames": self.segment_frames, "segments": self.segments}
        try:
            partial.write_text(json.dumps(state))
            os.replace(partial, target)
        except OSError as err:
            raise _disk_error(err, work) from err


def _disk_error(err: OSError, where: Path) -> VideoWriteError:
    if err.errno == errno.ENOSPC:
        return VideoWriteError(
            f"no space left on the disk while writing in '{where.parent}'; free some space or write elsewhere"
        )
    return VideoWriteError(f"cannot write in '{where.parent}' ({err.strerror}); choose a writable folder")


def _fingerprint(
    source: Path, output: Path, cfg: RestoreConfig, engine: ColorizeEngine, settings: EncoderSettings, info: VideoInfo
) -> str:
    """Everything a finished segment depends on: the same input, model and settings."""
    stat = source.stat()
    model = engine.model_path.stat()
    parts = {
        "source": [str(source.resolve()), stat.st_size, stat.st_mtime_ns],
        "model": [str(engine.model_path.resolve()), model.st_size, model.st_mtime_ns, engine.size, engine.gain],
        "output": output.suffix.lower(),
        "settings": [settings.codec, settings.crf, settings.preset],
        "restore": [cfg.start, cfg.duration, cfg.segment_seconds, cfg.batch_size, repr(cfg.temporal)],
        "video": [info.width, info.height, str(info.frame_rate)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _open_job(work: Path, fingerprint: str, cfg: RestoreConfig, info: VideoInfo) -> _Job:
    """The job to continue (``--resume`` with matching finished segments) or a fresh one."""
    segment_frames = max(1, round(cfg.segment_seconds * float(info.frame_rate)))
    if cfg.resume and (work / "job.json").is_file():
        try:
            saved = json.loads((work / "job.json").read_text())
        except (OSError, ValueError):
            saved = {}
        present = all((work / _segment_name(i)).is_file() for i in range(len(saved.get("segments", []))))
        if saved.get("fingerprint") == fingerprint and present and not info.variable_frame_rate:
            return _Job(fingerprint, int(saved["segment_frames"]), [int(n) for n in saved["segments"]])
        log.warning(
            "--resume: the unfinished restore in '%s' used another input, model or settings (or "
            "the input has a variable frame rate); starting over", work,
        )  # fmt: skip
    elif work.exists() and not cfg.resume:
        log.info("an unfinished earlier restore of this output was found; starting over (--resume continues it)")
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir()
    except OSError as err:
        raise _disk_error(err, work) from err
    job = _Job(fingerprint, segment_frames)
    job.save(work)
    return job


class _SegmentRun:
    """Frames from the reader through the colour stage into segment files of the work folder.

    Each segment is a complete video file with a fresh colour stage (blending and keyframes
    restart at its first frame, as at a cut), so a resumed restore is the same as one that
    never stopped. A segment counts only once its file is closed and renamed.
    """

    def __init__(
        self,
        cfg: RestoreConfig,
        info: VideoInfo,
        engine: ColorizeEngine,
        settings: EncoderSettings,
        work: Path,
        job: _Job,
        sampler: _PreviewSampler | None,
        bar: Progress,
    ) -> None:
        self.cfg, self.info, self.engine, self.settings = cfg, info, engine, settings
        self.work, self.job, self.sampler, self.bar = work, job, sampler, bar
        # Read and written in one planar format: the output's own 4:2:0 when both sides are
        # even (only the Y plane is read; the U, V planes written are the model's).
        self.pix_fmt = luma_pixel_format(info)
        self.uv_size = chroma_size(self.pix_fmt, info.width, info.height)
        self.frames = 0  # frames this run's sequential reader finished
        self.times = StageTimes()
        self.cuts: list[int] = []

    def consume(self, reader: FrameReader) -> None:
        """Read every frame; write them in segments of ``job.segment_frames``."""
        # Decoding, the model and encoding overlap: a reading thread, this thread (model and
        # blending, which release the GIL), a writing thread, and the two ffmpeg processes.
        frames_in = Prefetch(reader)
        try:
            pending = iter(frames_in)
            more = True
            while more:
                written, more = self.segment(pending, len(self.job.segments), sum(self.job.segments))
                if written:
                    self.finished(written)
                    self.frames += written
        finally:
            frames_in.close()

    def finished(self, written: int) -> None:
        """Record the next finished segment in the job (what --resume continues after)."""
        self.job.segments.append(written)
        self.job.save(self.work)

    def segment(self, frames: Iterator[np.ndarray], number: int, offset: int) -> tuple[int, bool]:
        """Write segment ``number`` (film frames from ``offset``) from ``frames``.

        Returns the frames written and whether the segment is full (more may follow).
        """
        first = next(frames, None)
        if first is None:
            return 0, False
        info = self.info
        final = self.work / _segment_name(number)
        partial = self.work / f".part_{_segment_name(number)}"
        stage = make_color_stage(
            self.cfg.temporal, self.engine.run, info.frame_rate, self.cfg.batch_size, background=True
        )
        written = 0
        with FrameWriter(partial, info, [], self.settings, in_pix_fmt=self.pix_fmt, segment=True) as writer:
            out = BackgroundWriter(writer)
            try:

                def emit(done: list[tuple[np.ndarray, np.ndarray]]) -> None:
                    nonlocal written
                    for y, chroma in done:
                        small = chroma_to_planes(chroma, info.full_range).transpose(1, 2, 0)
                        uv = cv2.resize(small, self.uv_size, interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
                        out.write_planes(y, uv)
                        if self.sampler is not None:
                            self.sampler.offer(offset + written, y, uv, info.full_range)
                        written += 1
                    self.bar.update(len(done))

                y: np.ndarray | None = first  # the reader delivers the Y plane alone
                pushed = 0
                while y is not None:
                    emit(stage.push(y, self.engine.shrink_plane(y, info.full_range)))
                    pushed += 1
                    y = next(frames, None) if pushed < self.job.segment_frames else None
                emit(stage.finish())
                out.finish()
            except BaseException:
                out.abandon()
                raise
            finally:
                stage.close()
        if writer.frames_written != written or written != pushed:
            raise VideoWriteError(f"wrote {writer.frames_written} of {pushed} frames to '{partial}'")
        os.replace(partial, final)
        self.times.add(stage.times)
        self.cuts += [offset + c for c in getattr(stage, "cuts", [])]
        return written, pushed == self.job.segment_frames
