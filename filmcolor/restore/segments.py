"""A restore in segments: the work folder and its lock, the job that --resume continues, and the
run that writes frames through the colour stage into segment files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..color import chroma_to_planes
from ..config import RestoreConfig, TemporalConfig
from ..errors import UsageError, VideoWriteError
from ..io.files import atomic_write, partial_path
from ..io.probe import VideoInfo, count_video_packets
from ..io.reader import FrameReader, Prefetch, chroma_size, luma_pixel_format
from ..io.streams import StreamPlan
from ..io.writer import (
    BackgroundWriter,
    EncoderSettings,
    FrameWriter,
)
from .colorizer import Colorizer
from .preview import PreviewSampler
from .references import CarriedColours
from .repair import RepairedFrames, Repairer, RepairTimes
from .stages import make_color_stage
from .temporal import StageTimes

log = logging.getLogger(__name__)

ProgressFactory = Callable[[int | None], "Progress"]


class Progress:
    """Receives progress; the CLI passes a tqdm bar, the library default is silent."""

    def update(self, frames: int) -> None:
        """``frames`` more frames are done (ignored here)."""

    def close(self) -> None:
        """The job is over (nothing to close here)."""


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
            raise disk_error(err, path) from err
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


def work_folder(output: Path) -> Path:
    """Where restore keeps the finished segments of ``output`` until the final mux."""
    return output.with_name(f".{output.stem}.filmcolor-work")


def segment_name(index: int) -> str:
    return f"seg_{index:05d}.nut"


@dataclass
class Job:
    """A restore in segments: what is finished (``job.json`` in the work folder)."""

    fingerprint: str
    segment_frames: int
    segments: list[int] = field(default_factory=list)  # frames in each finished segment
    ahead: dict[int, int] = field(default_factory=dict)
    """Segments finished out of order (on a cluster): number -> frames, until the segments
    before them are finished too."""

    def finish(self, number: int, frames: int) -> None:
        """Record segment ``number``: it joins ``segments`` once all before it are finished."""
        self.ahead[number] = frames
        while len(self.segments) in self.ahead:
            self.segments.append(self.ahead.pop(len(self.segments)))

    def save(self, work: Path) -> None:
        state = {
            "fingerprint": self.fingerprint,
            "segment_frames": self.segment_frames,
            "segments": self.segments,
            "ahead": {str(k): v for k, v in self.ahead.items()},
        }
        try:
            with atomic_write(work / "job.json") as partial:
                partial.write_text(json.dumps(state))
        except OSError as err:
            raise disk_error(err, work) from err


def disk_error(err: OSError, where: Path) -> VideoWriteError:
    if err.errno == errno.ENOSPC:
        return VideoWriteError(
            f"no space left on the disk while writing in '{where.parent}'; "
            "free some space or write elsewhere"
        )
    return VideoWriteError(
        f"cannot write in '{where.parent}' ({err.strerror}); choose a writable folder"
    )


def fingerprint(
    source: Path,
    output: Path,
    cfg: RestoreConfig,
    engine: Colorizer,
    settings: EncoderSettings,
    info: VideoInfo,
) -> str:
    """Everything a finished segment depends on: the same input, model and settings."""
    stat = source.stat()
    model = engine.model_path.stat()
    parts = {
        "source": [str(source.resolve()), stat.st_size, stat.st_mtime_ns],
        "model": [
            str(engine.model_path.resolve()),
            model.st_size,
            model.st_mtime_ns,
            engine.working_size,
            engine.gain,
        ],
        "output": output.suffix.lower(),
        "settings": [settings.codec, settings.crf, settings.preset],
        "restore": [
            cfg.start,
            cfg.duration,
            cfg.segment_seconds,
            cfg.batch_size,
            repr(cfg.temporal),
            repr(cfg.repair),
            [[str(p.resolve()), _digest(p)] for p in cfg.references],
            [
                [spec, _digest(Path(spec.rpartition("@")[0] or spec))]
                for spec in cfg.reference_palette
            ],
        ],
        "video": [info.width, info.height, str(info.frame_rate)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _digest(path: Path) -> str:
    """What a reference picture (or a folder of them) holds: names, sizes and times."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    parts = [
        (
            str(f.relative_to(path) if path.is_dir() else f.name),
            f.stat().st_size,
            f.stat().st_mtime_ns,
        )
        for f in files
        if f.is_file()
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def open_job(work: Path, fingerprint: str, cfg: RestoreConfig, info: VideoInfo) -> Job:
    """The job to continue (``--resume`` with matching finished segments) or a fresh one."""
    segment_frames = max(1, round(cfg.segment_seconds * float(info.frame_rate)))
    if cfg.resume and (work / "job.json").is_file():
        try:
            saved = json.loads((work / "job.json").read_text())
        except (OSError, ValueError):
            saved = {}
        present = all(
            (work / segment_name(i)).is_file() for i in range(len(saved.get("segments", [])))
        )
        if saved.get("fingerprint") == fingerprint and present and not info.variable_frame_rate:
            ahead = {
                int(k): int(v)
                for k, v in saved.get("ahead", {}).items()
                if (work / segment_name(int(k))).is_file()
            }
            return Job(
                fingerprint,
                int(saved["segment_frames"]),
                [int(n) for n in saved["segments"]],
                ahead,
            )
        log.warning(
            "resume: the unfinished restore in '%s' used another input, model or settings (or "
            "the input has a variable frame rate); starting over",
            work,
            extra={"fields": ("resume",)},
        )
    elif work.exists() and not cfg.resume:
        log.info(
            "an unfinished earlier restore of this output was found; starting over (resume "
            "continues it)",
            extra={"fields": ("resume",)},
        )
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir()
    except OSError as err:
        raise disk_error(err, work) from err
    job = Job(fingerprint, segment_frames)
    job.save(work)
    return job


def join_segments(
    work: Path,
    job: Job,
    frames: int,
    output: Path,
    info: VideoInfo,
    plan: list[StreamPlan],
    settings: EncoderSettings,
    cfg: RestoreConfig,
) -> None:
    """Join the finished segments of ``job`` (stream copy), mux the input's other streams beside
    them and give the film its name: written under a temporary name, checked to hold all its
    ``frames``, renamed only then (the temporary file is removed on any failure); the work
    folder is removed after."""
    tmp = partial_path(output)
    listing = work / "segments.txt"
    missing = [i for i in range(len(job.segments)) if not (work / segment_name(i)).is_file()]
    if missing:
        raise VideoWriteError(
            f"segment {missing[0] + 1} of '{output}' is missing from '{work}' (removed while the "
            "restore ran); run the restore again"
        )
    try:
        listing.write_text("".join(f"file '{segment_name(i)}'\n" for i in range(len(job.segments))))
    except OSError as err:
        raise disk_error(err, work) from err
    try:
        FrameWriter(tmp, info, plan, settings, cfg.start, cfg.duration, segments=listing).mux()
        joined = count_video_packets(tmp)
        if joined != frames:
            raise VideoWriteError(
                f"the joined film '{output}' holds {joined} of its {frames} restored frames (a "
                f"segment in '{work}' is damaged or was changed while the restore ran); run the "
                "restore again"
            )
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    shutil.rmtree(work, ignore_errors=True)


def _no_colour(luma: np.ndarray) -> np.ndarray:
    """Neutral chroma for luminance (N, h, w): what a repair without colour writes."""
    return np.zeros((luma.shape[0], 2, *luma.shape[1:]), np.float32)


class SegmentRun:
    """Frames from the reader through the colour stage into segment files of the work folder.

    Each segment is a complete video file with a fresh colour stage (blending and keyframes
    restart at its first frame, as at a cut), so a resumed restore is the same as one that
    never stopped. A segment counts only once its file is closed and renamed.
    """

    def __init__(
        self,
        cfg: RestoreConfig,
        info: VideoInfo,
        engine: Colorizer,
        settings: EncoderSettings,
        work: Path,
        job: Job,
        sampler: PreviewSampler | None,
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
        self.repair_times = RepairTimes()
        # Reference colour carried through its shots (restore --reference), by film frame.
        self.references = CarriedColours.load(work / "references")
        self.first_frame = round((cfg.start or 0.0) * float(info.frame_rate))
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
                written, more = self.segment(
                    pending, len(self.job.segments), sum(self.job.segments)
                )
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
        final = self.work / segment_name(number)
        # A name of this process's own: on a cluster, a segment retried on another machine
        # while a lost one still writes never shares its partial file.
        owner = f"{socket.gethostname()}-{os.getpid()}"
        partial = self.work / f".part_{Path(segment_name(number)).stem}.{owner}.nut"
        if self.cfg.colour:
            stage = make_color_stage(
                self.cfg.temporal,
                self.engine.run,
                info.frame_rate,
                self.cfg.batch_size,
                background=True,
                fit=self.engine.fit,
            )
        else:  # filmcolor repair: neutral chroma, the model never runs
            stage = make_color_stage(
                TemporalConfig(mode="none"), _no_colour, info.frame_rate, self.cfg.batch_size
            )
        repairer = Repairer(self.cfg.repair) if self.cfg.repair.enabled else None
        written = 0
        with FrameWriter(
            partial, info, [], self.settings, in_pix_fmt=self.pix_fmt, segment=True
        ) as writer:
            out = BackgroundWriter(writer)
            try:

                def emit(done: list[tuple[np.ndarray, np.ndarray]]) -> None:
                    nonlocal written
                    for y, chroma in done:
                        small = chroma_to_planes(chroma, info.full_range).transpose(1, 2, 0)
                        uv = cv2.resize(
                            small, self.uv_size, interpolation=cv2.INTER_LINEAR
                        ).transpose(2, 0, 1)
                        if self.references is not None:
                            uv = self.references.apply(
                                self.first_frame + offset + written, y, uv, info.full_range
                            )
                        out.write_planes(y, uv)
                        if self.sampler is not None:
                            self.sampler.offer(offset + written, y, uv, info.full_range)
                        written += 1
                    self.bar.update(len(done))

                def colour(plane: np.ndarray) -> None:
                    emit(stage.push(plane, self.engine.shrink_plane(plane, info.full_range)))

                pushed = 0

                def source() -> Iterator[np.ndarray]:
                    nonlocal pushed
                    y: np.ndarray | None = first  # the reader delivers the Y plane alone
                    while y is not None:
                        yield y
                        pushed += 1
                        y = next(frames, None) if pushed < self.job.segment_frames else None

                if repairer:  # repaired on a thread of its own, a few frames ahead
                    repaired = Prefetch(RepairedFrames(repairer, source()), depth=4)
                    try:
                        for y in repaired:
                            colour(y)
                    finally:
                        repaired.close()
                else:
                    for y in source():
                        colour(y)
                emit(stage.finish())
                out.finish()
            except BaseException:
                out.abandon()
                raise
            finally:
                stage.close()
        if writer.frames_written != written or written != pushed:
            raise VideoWriteError(
                f"wrote {writer.frames_written} of {pushed} frames to '{partial}'"
            )
        os.replace(partial, final)
        self.times.add(stage.times)
        if repairer:
            self.repair_times.merge(repairer.times)
        self.cuts += [offset + c for c in stage.cuts]
        return written, pushed == self.job.segment_frames
