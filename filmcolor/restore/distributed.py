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
from .batch import SKIPPED, film_config
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
        runs = [
            FilmRun(
                film.source.absolute(),
                out / film.source.name,
                film_config(cfg, film),
                {"source": str(film.source), "output": str(out / film.source.name)},
            )
            for film in films
        ]
        bar = progress(None) if progress else Progress()
        try:
            stats = _Schedule(cluster, runs, cpus, gpus, slots, bar, record, on_status).run()
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
    run.line["resumed"] = len(run.job.segments) + len(run.job.ahead)
    if run.line["resumed"]:
        log.info(
            "'%s': %d segments finished before (resume)",
            run.source.name,
            run.line["resumed"],
            extra={"fields": ("resume",)},
        )


class _Schedule:
    """The driver's loop: films prepared as the queue needs them (an archive of thousands of
    films is not probed before its first segment runs), their segments to the cluster in film
    order, at most a few per slot queued at once; each film joined by a task of its own as soon
    as its last segment is in."""

    def __init__(
        self,
        cluster: Cluster,
        runs: list[FilmRun],
        cpus: float,
        gpus: float,
        slots: int,
        bar: Progress,
        record: Callable[[dict[str, Any]], None] | None,
        on_status: Callable[[str], None] | None,
    ) -> None:
        self.cluster, self.runs, self.cpus, self.gpus = cluster, runs, cpus, gpus
        self.bar, self.record, self.on_status = bar, record, on_status
        self.limit = max(4, 2 * slots)
        self.todo: deque[FilmRun] = deque(runs)
        self.queue: deque[tuple[FilmRun, int | None]] = deque()
        self.refs: dict[Any, tuple[FilmRun, int | None | str]] = {}
        self.engines: dict[tuple, Colorizer] = {}
        self.segments_total = self.segments_done = 0
        self.frames_total = self.planned_films = 0

    def run(self) -> dict[str, Any]:
        try:
            while self.todo or self.queue or self.refs:
                while self.todo and len(self.queue) < self.limit:
                    self.prepare(self.todo.popleft())
                while self.queue and len(self.refs) < self.limit:
                    run, number = self.queue.popleft()
                    if not run.over:
                        self.refs[_submit(self.cluster, run, number, self.cpus, self.gpus)] = (
                            run,
                            number,
                        )
                        run.in_flight += 1
                finished, _ = self.cluster.wait(list(self.refs), timeout=2.0)
                for ref in finished:
                    self.landed(ref)
                self.status()
        except BaseException:
            for ref in self.refs:
                self.cluster.cancel(ref)
            for run in self.runs:
                if not run.over:
                    _abandon(run)
            raise
        return {"segments": self.segments_done}

    def prepare(self, run: FilmRun) -> None:
        """Check and plan a film; queue its segments (those not finished before)."""
        if run.target.exists() and not run.cfg.overwrite:
            _end(run, "skipped", self.record, reason=SKIPPED)
            return
        try:
            _prepare(run, self.engines, self.cpus, self.gpus)
        except FilmcolorError as err:
            _fail(run, err, self.record)
            return
        self.frames_total += run.expected
        self.planned_films += 1
        if hasattr(self.bar, "total"):
            # A tqdm bar: the frames of the films planned so far, and of those still to plan
            # at their average (films are planned as the queue needs them), for its ETA.
            left = sum(1 for other in self.todo if not other.over)
            self.bar.total = round(self.frames_total * (1 + left / self.planned_films))
        if run.frames:
            self.bar.update(run.frames)  # finished before (resume)
        if run.whole:
            self.queue.append((run, None))
            return
        assert run.job is not None
        run.planned = -(-run.expected // run.job.segment_frames)
        done = set(range(len(run.job.segments))) | set(run.job.ahead)
        missing = [n for n in range(run.planned) if n not in done]
        self.queue.extend((run, n) for n in missing)
        self.segments_total += len(missing)
        if not missing:  # everything was finished before: only the join is left
            run.end = run.planned - 1
            self.join(run)

    def landed(self, ref: Any) -> None:
        """A task is over: record its segment, its join or its whole film."""
        run, number = self.refs.pop(ref)
        run.in_flight -= 1
        if run.over:
            return
        try:
            value = self.cluster.result(ref)
        except FilmcolorError as err:
            for other, (other_run, _) in list(self.refs.items()):
                if other_run is run:
                    self.cluster.cancel(other)
            _fail(run, err, self.record, number if isinstance(number, int) else None)
            return
        if number == "join":
            _end(run, "done", self.record, frames=run.frames, segments=len(run.job.segments))
        elif number is None:  # a whole film
            self.bar.update(value.frames)
            run.frames = value.frames
            _end(run, "done", self.record, frames=value.frames)
        else:
            self.segment(run, number, *value[:2])

    def segment(self, run: FilmRun, number: int, written: int, full: bool) -> None:
        self.segments_done += 1
        assert run.job is not None
        if written:
            run.job.finish(number, written)
            run.job.save(run.work)
            run.frames += written
            self.bar.update(written)
        if not written:
            run.end = number - 1 if run.end is None else min(run.end, number - 1)
        elif not full:
            run.end = number if run.end is None else min(run.end, number)
        elif number == run.planned - 1 and run.end is None:
            if run.exact:
                run.end = number  # its packets were counted: nothing follows
            else:  # the film may be longer than its header says: one more segment
                self.queue.appendleft((run, run.planned))
                run.planned += 1
                self.segments_total += 1
        self.join(run)

    def join(self, run: FilmRun) -> None:
        """Hand the film's join to the cluster once no segment of it is out and its last one is
        known and in (the length checked here first): a task on a node, so that the driver's
        machine does not carry every film's bytes."""
        job = run.job
        if run.over or job is None or run.in_flight or run.end is None:
            return
        if len(job.segments) <= run.end:
            return  # a segment before the end is still queued
        del job.segments[run.end + 1 :]
        run.frames = sum(job.segments)
        try:
            check_length(run.source, run.info, run.cfg, run.frames, run.expected)
        except FilmcolorError as err:
            _fail(run, err, self.record)
            return
        args = (run.work, job, run.frames, run.target, run.info, run.plan, run.settings, run.cfg)
        self.refs[self.cluster.submit(join_segments, args, cpus=min(1.0, self.cpus))] = (
            run,
            "join",
        )
        run.in_flight += 1

    def status(self) -> None:
        if self.on_status is None:
            return
        done = sum(1 for r in self.runs if r.over and r.line.get("status") == "done")
        failed = sum(1 for r in self.runs if r.over and r.line.get("status") == "failed")
        self.on_status(
            f"films {done}/{len(self.runs)} done, {failed} failed; "
            f"segments {self.segments_done}/{self.segments_total}"
        )


def _submit(cluster: Cluster, run: FilmRun, number: int | None, cpus: float, gpus: float) -> Any:
    if number is None:
        return cluster.submit(restore, (run.source, run.target, run.cfg), cpus, gpus)
    assert run.job is not None
    size = run.job.segment_frames
    args = (run.source, run.cfg, run.info, run.settings, run.work, number, size)
    return cluster.submit(restore_segment, args, cpus, gpus)


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
