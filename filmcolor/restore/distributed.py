"""``restore-batch --cluster``: many films restored on a Ray cluster, segment by segment.

The driver (this process) checks and plans every film as restore does (probe, timing scan,
output checks, the work folder and its ``job.json``), then hands the films' segments to the
cluster in film order: each segment is restored by :func:`~filmcolor.restore.pool.restore_segment`
in a Ray worker, exactly as a ``--jobs`` worker does (its own reader seeking to the segment, a
fresh colour stage, the model session kept by the worker for its next segments), and lands
in the film's work folder under its final name only when complete. As soon as all segments
of a film are in, the driver joins them and muxes the film's sound and other streams
(:func:`~filmcolor.restore.segments.join_segments`): the first films are finished while the
last are still queued.

Faults: a segment whose worker or node is lost is run again on another node by Ray (the
same frames: a segment depends only on the film and the settings); a film that fails (a
damaged file) is reported in ``batch.jsonl`` and the others go on; with ``resume`` the work
folders keep every finished segment (recorded in ``job.json`` as it lands), and the same
command run again after the driver was stopped restores only what is missing. A film that
cannot be cut into segments (a variable frame rate, an unknown length, ``start`` or
``duration``) is restored whole by one task, by :func:`~filmcolor.restore.pipeline.restore`.

Every node must reach the films, the output folder and the model under the same paths.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster import Cluster
from ..config import RestoreConfig
from ..errors import FilmcolorError
from ..io.probe import VideoInfo, probe, scan_timing
from ..io.streams import StreamPlan, plan_streams
from ..io.writer import EncoderSettings, check_output, default_codec, output_pixel_format
from .colorizer import Colorizer
from .pipeline import check_input, check_length, check_paths, expected_frames, restore
from .pool import restore_segment
from .segments import (
    Job,
    Progress,
    ProgressFactory,
    fingerprint,
    join_segments,
    open_job,
    output_lock,
    work_folder,
)

log = logging.getLogger(__name__)

SKIPPED = "the output exists (restored by an earlier run)"
CLUSTER_SEGMENT_SECONDS = 30.0
"""Segment length on a cluster unless set: short enough to spread a film over many nodes,
long enough that a segment's start (a seek, a fresh colour stage) costs about 1%."""


@dataclass
class FilmRun:
    """A film of the batch on its way through the cluster."""

    source: Path
    target: Path
    cfg: RestoreConfig
    line: dict[str, Any]
    info: VideoInfo | None = None
    settings: EncoderSettings | None = None
    plan: list[StreamPlan] = field(default_factory=list)
    job: Job | None = None
    expected: int = 0
    exact: bool = False  # expected is the count of the film's video packets
    planned: int = 0  # segments planned so far (more when the last comes back full)
    end: int | None = None  # the film's last segment, once a segment came back short
    in_flight: int = 0
    frames: int = 0
    started: float = field(default_factory=time.perf_counter)
    over: bool = False

    @property
    def work(self) -> Path:
        return work_folder(self.target)

    @property
    def whole(self) -> bool:
        """Restored in one task: no segments for this film."""
        return self.job is None


def restore_on_cluster(
    films: list[Any],
    out: Path,
    cfg: RestoreConfig,
    address: str,
    cpus: float = 1.0,
    gpus: float = 0.0,
    record: Callable[[dict[str, Any]], None] | None = None,
    progress: ProgressFactory | None = None,
    on_status: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Restore ``films`` (:class:`~filmcolor.restore.batch.Film`) into ``out`` on the Ray
    cluster at ``address`` (see the module docstring); each segment task takes ``cpus`` CPUs
    and ``gpus`` GPUs. ``record`` gets each film's manifest line as it ends.

    Returns the cluster's size and segment counts for the summary.

    Raises:
        MissingDependencyError: ray is not installed.
        ClusterError: the cluster cannot be reached.
    """
    from .batch import film_config

    # Every node reads and writes the same paths: none relative to this process's folder.
    out = out.absolute()
    if cfg.model is not None:
        cfg = dataclasses.replace(cfg, model=Path(cfg.model).absolute())
    with Cluster.connect(address) as cluster, output_lock(out / "batch"):
        size = cluster.size()
        slots = max(1, int(size.gpus // gpus) if gpus else int(size.cpus // cpus))
        log.info(
            "cluster '%s': %d nodes, %g CPUs, %g GPUs; %d segments at a time",
            address,
            size.nodes,
            size.cpus,
            size.gpus,
            slots,
        )
        runs: list[FilmRun] = []
        engines: dict[tuple, Colorizer] = {}
        for film in films:
            target = out / film.source.name
            run = FilmRun(
                film.source.absolute(),
                target,
                film_config(cfg, film),
                {"source": str(film.source), "output": str(target)},
            )
            if target.exists() and not cfg.overwrite:
                _end(run, "skipped", record, reason=SKIPPED)
                continue
            try:
                _prepare(run, engines, cpus, gpus)
            except FilmcolorError as err:
                _fail(run, err, record)
                continue
            runs.append(run)
        total = sum(run.expected for run in runs)
        bar = progress(total or None) if progress else Progress()
        for run in runs:
            if run.job is not None and run.frames:
                bar.update(run.frames)  # finished before (resume)
        try:
            stats = _schedule(cluster, runs, cpus, gpus, slots, bar, record, on_status)
        finally:
            bar.close()
        stats.update(nodes=size.nodes, cpus=size.cpus, gpus=size.gpus)
        return stats


def _prepare(run: FilmRun, engines: dict[tuple, Colorizer], cpus: float, gpus: float) -> None:
    """The driver's share of a film: the checks restore makes before any work, the stream plan
    and the work folder with its job (what a resumed batch finds finished)."""
    cfg = dataclasses.replace(
        run.cfg,
        jobs=1,
        threads=run.cfg.threads or max(1, int(cpus)),
        device=run.cfg.device if run.cfg.device != "auto" else ("cuda" if gpus else "auto"),
        segment_seconds=run.cfg.segment_seconds or CLUSTER_SEGMENT_SECONDS,
    )
    run.cfg = cfg
    check_paths(run.source, run.target, cfg.overwrite)
    info = check_input(scan_timing(probe(run.source)), cfg)
    run.info = info
    run.settings = EncoderSettings(cfg.codec or default_codec(run.target), cfg.crf, cfg.preset)
    check_output(
        run.target, run.settings, output_pixel_format(info.width, info.height, info.full_range)
    )
    run.plan = plan_streams(info, run.target)
    expected = expected_frames(info, cfg)
    run.expected = int(expected or 0)
    run.exact = bool(info.frame_count) and run.expected == info.frame_count
    if info.variable_frame_rate or not expected or cfg.start is not None or cfg.duration:
        return  # restored whole, by one task
    key = (cfg.model, "cpu", cfg.working_size, 1, cfg.precision, cfg.saturation)
    if key not in engines:  # what the fingerprint needs of the model (its file, size, gain)
        engines[key] = Colorizer(*key)
    stamp = fingerprint(run.source, run.target, cfg, engines[key], run.settings, info)
    run.job = open_job(run.work, stamp, cfg, info)
    run.frames = sum(run.job.segments) + sum(run.job.ahead.values())
    if run.job.segments or run.job.ahead:
        log.info(
            "'%s': %d segments finished before (resume)",
            run.source.name,
            len(run.job.segments) + len(run.job.ahead),
        )


def _schedule(
    cluster: Cluster,
    runs: list[FilmRun],
    cpus: float,
    gpus: float,
    slots: int,
    bar: Progress,
    record: Callable[[dict[str, Any]], None] | None,
    on_status: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Segments to the cluster in film order, at most a few per slot queued at once; each film
    joined as soon as its last segment is in."""
    queue: deque[tuple[FilmRun, int | None]] = deque()
    for run in runs:
        if run.whole:
            queue.append((run, None))
            continue
        assert run.job is not None
        run.planned = -(-run.expected // run.job.segment_frames)
        done = set(range(len(run.job.segments))) | set(run.job.ahead)
        queue.extend((run, n) for n in range(run.planned) if n not in done)
        if not any(True for item in queue if item[0] is run):
            run.end = run.planned - 1  # everything was finished before: only the join is left
            _maybe_join(run, record)
    refs: dict[Any, tuple[FilmRun, int | None]] = {}
    segments_total = sum(1 for item in queue if item[1] is not None)
    segments_done = 0
    limit = max(4, 2 * slots)

    def status() -> None:
        if on_status is None:
            return
        films_done = sum(1 for r in runs if r.over and r.line.get("status") == "done")
        failed = sum(1 for r in runs if r.over and r.line.get("status") == "failed")
        on_status(
            f"films {films_done}/{len(runs)} done, {failed} failed; "
            f"segments {segments_done}/{segments_total}"
        )

    try:
        while queue or refs:
            while queue and len(refs) < limit:
                run, number = queue.popleft()
                if run.over:
                    continue
                refs[_submit(cluster, run, number, cpus, gpus)] = (run, number)
                run.in_flight += 1
            finished, _ = cluster.wait(list(refs), timeout=2.0)
            for ref in finished:
                run, number = refs.pop(ref)
                run.in_flight -= 1
                if run.over:
                    continue
                try:
                    value = cluster.result(ref)
                except FilmcolorError as err:
                    for other, (other_run, _) in list(refs.items()):
                        if other_run is run:
                            cluster.cancel(other)
                    _fail(run, err, record, number)
                    continue
                if number is None:  # a whole film
                    bar.update(value.frames)
                    run.frames = value.frames
                    _end(run, "done", record, frames=value.frames)
                    continue
                segments_done += 1
                written, full = value[0], value[1]
                assert run.job is not None
                if written:
                    run.job.finish(number, written)
                    run.job.save(run.work)
                    run.frames += written
                    bar.update(written)
                if not written:
                    run.end = number - 1 if run.end is None else min(run.end, number - 1)
                elif not full:
                    run.end = number if run.end is None else min(run.end, number)
                elif number == run.planned - 1 and run.end is None:
                    if run.exact:
                        run.end = number  # its packets were counted: nothing follows
                    else:  # the film may be longer than its header says: one more segment
                        queue.appendleft((run, run.planned))
                        run.planned += 1
                        segments_total += 1
                _maybe_join(run, record)
            status()
    except BaseException:
        for ref in refs:
            cluster.cancel(ref)
        for run in runs:
            if not run.over:
                _abandon(run)
        raise
    return {"segments": segments_done}


def _submit(cluster: Cluster, run: FilmRun, number: int | None, cpus: float, gpus: float) -> Any:
    if number is None:
        return cluster.submit(restore, (run.source, run.target, run.cfg), cpus, gpus)
    assert run.job is not None
    size = run.job.segment_frames
    args = (run.source, run.cfg, run.info, run.settings, run.work, number, size)
    return cluster.submit(restore_segment, args, cpus, gpus)


def _maybe_join(run: FilmRun, record: Callable[[dict[str, Any]], None] | None) -> None:
    """Join the film once no segment of it is out and its last one is known and in."""
    job = run.job
    if run.over or job is None or run.in_flight or run.end is None:
        return
    if len(job.segments) <= run.end:
        return  # a segment before the end is still queued
    assert run.info is not None and run.settings is not None
    try:
        del job.segments[run.end + 1 :]
        frames = sum(job.segments)
        check_length(run.source, run.info, run.cfg, frames, run.expected)
        join_segments(run.work, job, frames, run.target, run.info, run.plan, run.settings, run.cfg)
    except FilmcolorError as err:
        _fail(run, err, record)
        return
    shutil.rmtree(run.work, ignore_errors=True)
    _end(run, "done", record, frames=frames, segments=len(job.segments))


def _fail(
    run: FilmRun,
    err: FilmcolorError,
    record: Callable[[dict[str, Any]], None] | None,
    number: int | None = None,
) -> None:
    where = f" (segment {number + 1})" if number is not None else ""
    log.warning("'%s' failed%s: %s", run.source, where, err)
    _abandon(run)
    _end(run, "failed", record, reason=str(err), exit_code=err.exit_code)


def _abandon(run: FilmRun) -> None:
    """A film that stops unfinished: its finished segments stay for resume, else go."""
    run.over = True
    if run.job is not None and not (run.cfg.resume and (run.job.segments or run.job.ahead)):
        shutil.rmtree(run.work, ignore_errors=True)


def _end(
    run: FilmRun,
    status: str,
    record: Callable[[dict[str, Any]], None] | None,
    **fields: Any,
) -> None:
    run.over = True
    run.line.update(status=status, **fields)
    if status == "done":  # films finish early or late in a batch: when, not how long
        run.line["ready_after"] = round(time.perf_counter() - run.started, 2)
    if record:
        record(run.line)
