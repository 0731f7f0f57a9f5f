"""Restore a film: every frame colorized, everything else carried over untouched.

Data flow: ``probe -> FrameReader -> colour stage (Colorizer + temporal blending, reset at
cuts) -> FrameWriter`` (see docs/architecture.md). The luminance plane of each frame passes
through unchanged; only chroma is computed, at the model's working size, blended along the
optical flow with its neighbours (filmcolor.restore.temporal) and upsampled. The film is encoded in
segments (the unit of ``--resume``), joined at the end with the input's other streams
stream-copied. The output is written under a temporary name beside the target and renamed
only when it is complete.
Example::

    result = restore(Path("chaplin.mp4"), Path("chaplin_color.mp4"), RestoreConfig())
    print(result.frames, result.fps)
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..color import COLOUR_SPREAD, colour_spread
from ..config import RestoreConfig, SceneConfig
from ..errors import UsageError, VideoReadError, VideoWriteError
from ..io.files import partial_path
from ..io.probe import VideoInfo, probe, scan_timing
from ..io.process import require_ffmpeg
from ..io.reader import FrameReader, sample_frames
from ..io.streams import StreamPlan, plan_streams
from ..io.writer import (
    EncoderSettings,
    check_output,
    default_codec,
    output_pixel_format,
)
from .colorizer import Colorizer
from .pool import parallel_segments, plan_jobs
from .preview import PreviewSampler
from .references import carry_references, place_references
from .segments import (
    Progress,
    ProgressFactory,
    SegmentRun,
    fingerprint,
    join_segments,
    open_job,
    output_lock,
    work_folder,
)

log = logging.getLogger(__name__)


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
    repair_seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds of each repair step (``--repair``), of the segments this process wrote."""
    cuts: list[int] = field(default_factory=list)
    resumed_from: int = 0

    @property
    def fps(self) -> float:
        """Frames restored per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def check_paths(source: Path, output: Path, overwrite: bool) -> None:
    """Refuse output == input, an existing output, and a missing or read-only output folder."""
    if output.resolve() == source.resolve() or (output.exists() and output.samefile(source)):
        raise UsageError(f"output '{output}' is the input file; choose another output name")
    if output.is_dir():
        raise UsageError(f"output '{output}' is a folder; give a file name such as film_color.mp4")
    if output.exists() and not overwrite:
        raise UsageError(
            f"output '{output}' already exists; replace it with overwrite", fields=("overwrite",)
        )
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise VideoWriteError(
            f"output folder '{folder}' does not exist; create it first (mkdir -p)"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VideoWriteError(
            f"cannot write in output folder '{folder}' (permission denied); choose a writable "
            f"folder"
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
        raise UsageError(
            f"preview '{preview}' is the output film; give the sheet its own name such as sheet.png"
        )
    check_paths(source, preview, True)


def check_input(info: VideoInfo, cfg: RestoreConfig) -> VideoInfo:
    """Refuse what restore cannot make a whole film of, before any work: a truncated file
    (unless ``cfg.accept_truncated``), a start past the end, frames too small."""
    source = info.path
    if min(info.width, info.height) < MIN_FRAME_SIDE:
        raise VideoReadError(
            f"'{source}' has frames of {info.width}x{info.height} pixels; restore takes frames of "
            f"at "
            f"least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} (scale it up first: ffmpeg -i IN -vf "
            f"scale=-2:64 OUT)"
        )
    if info.truncated:
        assert info.declared_duration is not None
        held = (
            f"'{source}' ends at {info.duration or 0:.1f} s ({info.frame_count} frames) of the "
            f"{info.declared_duration:.1f} s it declares: the file is truncated or damaged"
        )
        if not cfg.accept_truncated:
            raise VideoReadError(
                f"{held}; copy it again from its source, or restore the part it holds with "
                f"accept_truncated",
                fields=("accept_truncated",),
            )
        log.warning(
            "%s; restoring the %.1f s it holds (accept_truncated)",
            held,
            info.duration or 0,
            extra={"fields": ("accept_truncated",)},
        )
    if cfg.start is not None and info.duration is not None and cfg.start >= info.duration:
        raise UsageError(
            f"start {cfg.start:g} is past the end of '{source}', which is only {info.duration:.1f} "
            f"s "
            "long; choose an earlier start",
            fields=("start",),
        )
    return info


def _refuse_colour(info: VideoInfo) -> None:
    """A repair without colour writes neutral chroma: refuse a colour film rather than drop its
    colour."""
    spread = colour_spread(sample_frames(info))
    if spread > COLOUR_SPREAD:
        raise UsageError(
            f"'{info.path}' is a colour film (colour spread {spread:.1f}; B&W films measure "
            f"below {COLOUR_SPREAD:.1f}): repair works on B&W films and would drop its colour; "
            "give the B&W film"
        )


def _warn_if_colour(info: VideoInfo) -> None:
    """Say so when the film is already in colour: restore would replace its colour with the
    model's guess."""
    try:
        spread = colour_spread(sample_frames(info))
        if spread > COLOUR_SPREAD:
            log.warning(
                "'%s' is already in colour (colour spread %.1f; B&W films measure below %.1f): "
                "restore "
                "replaces its colour with the model's guess; a colour film needs nothing done "
                "(saturation 0 makes it black and white)",
                info.path,
                spread,
                COLOUR_SPREAD,
                extra={"fields": ("saturation",)},
            )
    except Exception as err:  # a judgement for a warning only: the restore itself reads the film
        log.debug("could not judge whether '%s' is in colour: %s", info.path, err)


def check_length(
    source: Path, info: VideoInfo, cfg: RestoreConfig, frames: int, expected: int | None
) -> None:
    """Refuse a film that decoded to measurably fewer frames than its packets promise (frames
    the decoder could not make, a file that changed while it was read): never a silently
    shorter film. ``cfg.accept_truncated`` turns that into a warning."""
    if not expected:
        return
    exact = (
        cfg.start is None
        and cfg.duration is None
        and info.frame_count
        and not info.variable_frame_rate
    )
    fps = float(info.frame_rate)
    if frames >= expected - (1 if exact else max(2, round(0.1 * fps))):
        return
    text = (
        f"'{source}' decoded to {frames} frames ({frames / fps:.1f} s) of the {expected} "
        f"({expected / fps:.1f} s) it holds: frames are damaged or missing"
    )
    if not cfg.accept_truncated:
        raise VideoReadError(
            f"{text}; copy it again from its source, or restore what can be decoded with "
            f"accept_truncated",
            fields=("accept_truncated",),
        )
    log.warning(
        "%s; kept the %d frames decoded (accept_truncated)",
        text,
        frames,
        extra={"fields": ("accept_truncated",)},
    )


def expected_frames(info: VideoInfo, cfg: RestoreConfig) -> int | None:
    total = info.estimated_frames
    if cfg.start is None and cfg.duration is None:
        return total
    if info.duration is None:
        return None
    end = (
        info.duration
        if cfg.duration is None
        else min(info.duration, (cfg.start or 0) + cfg.duration)
    )
    return max(0, round((end - (cfg.start or 0)) * float(info.frame_rate)))


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
    if not cfg.colour:
        _refuse_colour(info)
    colour_check = threading.Thread(
        target=_warn_if_colour if cfg.colour else lambda _: None,
        args=(info,),
        name="filmcolor-colour",
    )
    colour_check.start()  # a few small frames decoded while the model loads
    try:
        with output_lock(output):
            check_paths(
                source, output, cfg.overwrite
            )  # again: another run may have finished it meanwhile
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
    engine = Colorizer(
        cfg.model, cfg.device, cfg.working_size, cfg.threads, cfg.precision, cfg.saturation
    )
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
    expected = expected_frames(info, cfg)
    placed = (
        place_references(
            list(cfg.references),
            info,
            SceneConfig(threshold=cfg.temporal.cut_threshold),
            cfg.reference_palette,
        )
        if cfg.references or cfg.reference_palette
        else None
    )
    jobs_auto = cfg.jobs == 0
    cfg = plan_jobs(cfg, info, expected, preview is not None, engine.device)
    sampler = PreviewSampler(expected) if preview is not None else None
    tmp = partial_path(output)
    work = work_folder(output)
    job = open_job(work, fingerprint(source, output, cfg, engine, settings, info), cfg, info)
    if placed is not None:
        carry_references(info, placed, work / "references")
    done_before = resumed_from = sum(job.segments)
    bar = progress(expected) if progress else Progress()
    if done_before:
        log.info(
            "resuming '%s' after %d finished frames (%d segments)",
            output,
            done_before,
            len(job.segments),
        )
        bar.update(done_before)
    run = SegmentRun(cfg, info, engine, settings, work, job, sampler, bar)
    try:
        if cfg.jobs > 1:
            parallel_segments(run, source, expected, fallback=jobs_auto)
        done_before = sum(job.segments)  # the sequential reader goes on from here (to the end)
        fps = float(info.frame_rate)
        read_start = info.seek_time(done_before, cfg.start)
        read_duration = None
        if cfg.duration is not None:
            read_duration = cfg.duration - (done_before / fps if done_before else 0.0)
        with FrameReader(
            info,
            pix_fmt=run.pix_fmt,
            start=read_start or None,
            duration=read_duration,
            luma_only=True,
        ) as reader:
            run.consume(reader)
            frames = done_before + run.frames
            if frames == 0:
                raise VideoReadError(
                    f"no frame could be decoded from '{source}'"
                    + (" in the chosen start/duration" if cfg.start or cfg.duration else "")
                    + f"; the file is damaged or empty [ffmpeg: {reader.stderr_text()[-200:]}]",
                    fields=("start", "duration"),
                )
            check_length(source, info, cfg, frames, expected)
            decode_errors = reader.decode_errors
        join_segments(work, job, frames, output, info, plan, settings, cfg)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if cfg.resume and job.segments:
            log.warning(
                "stopped; %d finished frames are kept in '%s': run the same command with resume "
                "to continue",
                sum(job.segments),
                work,
                extra={"fields": ("resume",)},
            )
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
        repair_seconds=dict(run.repair_times.seconds),
        cuts=run.cuts,
        resumed_from=resumed_from,
    )
