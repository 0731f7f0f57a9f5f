"""--jobs: a film's segments restored in worker processes."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import RestoreConfig
from ..errors import VideoWriteError
from ..io.probe import VideoInfo
from ..io.process import keep_freed_memory, stop_children
from ..io.reader import FrameReader, Prefetch
from ..io.writer import (
    EncoderSettings,
)
from .colorizer import Colorizer
from .segments import Job, Progress, SegmentRun
from .temporal import StageTimes

log = logging.getLogger(__name__)


def auto_jobs(device: str = "cpu") -> int:
    """``--jobs auto``: on a CPU, one segment process per 4 cores from 8 cores up (at most 8),
    else 1; with the model on a GPU, 1.

    Each process runs its own decoder, colour stage, model and encoder: on many cores that pays
    with the model on the CPU, and costs with it on a GPU, where one process already keeps the
    CPU busy with its encoder (measured in docs/benchmarks.md).
    """
    if device == "cuda":
        return 1
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    return 1 if cores < 8 else min(8, cores // 4)


def plan_jobs(
    cfg: RestoreConfig,
    info: VideoInfo,
    expected: int | None,
    with_preview: bool,
    device: str = "cpu",
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
        log.info(
            "jobs %d: restoring one segment at a time (%s)",
            jobs,
            ", ".join(why),
            extra={"fields": ("jobs",)},
        )
    if not parallel:
        jobs = 1
    seconds = cfg.segment_seconds
    if seconds is None:
        seconds = 60.0
        if parallel:
            film = int(expected or 0) / float(info.frame_rate)
            seconds = min(60.0, max(2.0, round(film / (4 * jobs) * 2) / 2))
    if parallel:
        log.info(
            "restoring in %d processes, segments of %g s (jobs, segment_seconds)",
            jobs,
            seconds,
            extra={"fields": ("jobs", "segment_seconds")},
        )
    return replace(cfg, jobs=jobs, segment_seconds=seconds)


def parallel_segments(
    run: SegmentRun, source: Path, expected: int | None, fallback: bool = False
) -> None:
    """``--jobs N``: the film's segments restored N at a time in worker processes.

    Each segment has its own colour stage anyway (the unit of --resume), so segments in
    parallel give the same film as one after the other; each worker has its own reader
    (seeking to the segment's first frame, as --resume does), model and encoder. Finished
    segments are recorded in film order. Called when :func:`plan_jobs` planned several
    processes; anything left after the planned segments (a length declared short) is restored
    by the sequential reader that follows. With ``fallback`` (``--jobs auto``),
    worker processes that cannot start or that stop leave the rest of the film to that
    sequential reader, with a warning, instead of failing the restore.
    """
    cfg, info, job = run.cfg, run.info, run.job
    size = job.segment_frames
    if not expected:
        return  # plan_jobs plans processes only for a known length
    if any(n != size for n in job.segments):
        log.info(
            "jobs %d: the film's last segment is already finished (resume)",
            cfg.jobs,
            extra={"fields": ("jobs", "resume")},
        )
        return
    first, last = len(job.segments), -(-int(expected) // size)
    if last - first < 2:
        return
    import concurrent.futures
    import concurrent.futures.process
    import multiprocessing

    # On a CPU each worker gets its share of the model threads (the rest decode and encode);
    # on a GPU the engine's own default (one).
    threads = cfg.threads or (
        max(1, (os.cpu_count() or 2) // (2 * cfg.jobs)) if run.engine.device == "cpu" else 0
    )
    worker_cfg = replace(cfg, threads=threads)
    # spawn, not fork: this process already runs onnxruntime and reader threads.
    try:
        pool = concurrent.futures.ProcessPoolExecutor(
            cfg.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_setup
        )
    except (OSError, NotImplementedError) as err:
        if not fallback:
            raise VideoWriteError(
                f"jobs {cfg.jobs}: worker processes cannot be started here ({err}); use jobs 1",
                fields=("jobs", "jobs"),
            ) from err
        log.warning(
            "jobs auto: worker processes cannot be started here (%s); one segment at a time",
            err,
            extra={"fields": ("jobs",)},
        )
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
                        "jobs auto: a worker process stopped at segment %d (out of memory, or "
                        "killed); "
                        "going on one segment at a time",
                        number + 1,
                        extra={"fields": ("jobs",)},
                    )
                    _stop_workers(pool)
                    return
                raise VideoWriteError(
                    f"a jobs worker process stopped while restoring segment {number + 1} of "
                    f"'{source}' "
                    "(out of memory, or killed); rerun with fewer jobs, or jobs 1 "
                    "(from Python, call restore under 'if __name__ == \"__main__\":')",
                    fields=("jobs", "jobs", "jobs"),
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
    source: Path,
    cfg: RestoreConfig,
    info: VideoInfo,
    settings: EncoderSettings,
    work: Path,
    number: int,
    size: int,
) -> tuple[int, bool, StageTimes, list[int]]:
    """One segment in a worker process (``--jobs``): its own reader, model and encoder."""
    global _IN_SEGMENT
    _IN_SEGMENT = True
    try:
        return restore_segment(source, cfg, info, settings, work, number, size)
    except KeyboardInterrupt:
        stop_children()  # one started just as the signal came would outlive this worker
        os._exit(130)  # stopped by restore (or its death): cleaned up, nobody waits for a result
    finally:
        _IN_SEGMENT = False


def restore_segment(
    source: Path,
    cfg: RestoreConfig,
    info: VideoInfo,
    settings: EncoderSettings,
    work: Path,
    number: int,
    size: int,
) -> tuple[int, bool, StageTimes, list[int]]:
    """Segment ``number`` (``size`` frames from frame ``number * size``) of ``source`` written
    into ``work`` by this process, which keeps its model session for its next segments (a
    --jobs worker process, a Ray worker on a cluster). Returns the frames written, whether the
    segment is full (more may follow), the stage times and the cuts found."""
    key = (cfg.model, cfg.device, cfg.working_size, cfg.threads, cfg.precision, cfg.saturation)
    if key not in _WORKER_ENGINES:  # one model session per worker, kept for its next segments
        keep_freed_memory()
        _WORKER_ENGINES.clear()
        _WORKER_ENGINES[key] = Colorizer(*key)
    engine = _WORKER_ENGINES[key]
    run = SegmentRun(cfg, info, engine, settings, work, Job("", size), None, Progress())
    offset = number * size
    start = info.seek_time(offset)
    with FrameReader(info, pix_fmt=run.pix_fmt, start=start, luma_only=True) as reader:
        frames = Prefetch(reader)
        try:
            written, full = run.segment(iter(frames), number, offset)
        finally:
            frames.close()
    return written, full, run.times, run.cuts


_IN_SEGMENT = False
"""In a --jobs worker: True while it restores a segment (SIGTERM then unwinds it)."""
_WORKER_ENGINES: dict[tuple, Colorizer] = {}
"""In a --jobs or cluster worker: its model session."""


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
