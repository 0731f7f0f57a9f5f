"""Frames into a film through an ffmpeg pipe: the encoder settings, the writer that muxes the
input's
other streams beside the video, and a writing thread.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import ffmpeg
import numpy as np

from ..errors import (
    VideoWriteError,
    stderr_tail,
)
from .probe import VideoInfo
from .process import StderrDrain, ffmpeg_base, media_path, spawn, stop, trial, trim_args
from .reader import chroma_size, frame_pixel_format
from .streams import StreamPlan


@dataclass(frozen=True)
class EncoderSettings:
    """The video encoder and its quality settings."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"

    def args(self) -> dict[str, object]:
        """ffmpeg output options for this encoder."""
        args: dict[str, object] = {"c:v": self.codec}
        if self.codec in ("libx264", "libx265"):
            args.update(crf=self.crf, preset=self.preset)
        elif self.codec in ("libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1"):
            args.update(crf=self.crf, **{"b:v": 0})
        return args


def default_codec(path: Path) -> str:
    """The video encoder for an output name: VP9 for .webm, H.264 elsewhere."""
    return "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"


def output_pixel_format(width: int, height: int, full_range: bool) -> str:
    """4:2:0 when both sides are even (the compatible choice), else 4:4:4 (exact odd sizes)."""
    sub = "420p" if width % 2 == 0 and height % 2 == 0 else "444p"
    return ("yuvj" if full_range else "yuv") + sub


def check_output(path: Path, settings: EncoderSettings, pix_fmt: str) -> None:
    """Check that ffmpeg knows the output's container and that it holds the video codec.

    Raises:
        VideoWriteError: unknown extension, or a codec the container cannot hold.
    """
    with tempfile.TemporaryDirectory(prefix="filmcolor-check-") as tmp:
        target = Path(tmp) / f"check{path.suffix}"
        source = ffmpeg.input("color=c=gray:s=16x16:d=0.08:r=25", f="lavfi")
        args = settings.args() | {"pix_fmt": pix_fmt}
        cmd = ffmpeg_base() + ffmpeg.output(source, str(target), **args).compile()[1:]
        ok, stderr = trial(cmd)
    if ok:
        return
    if "suitable output format" in stderr or "Invalid argument" in stderr and not path.suffix:
        raise VideoWriteError(
            f"ffmpeg does not know the output type of '{path}' (extension "
            f"'{path.suffix or 'none'}'); name it .mp4, .mkv, .mov or .webm"
        )
    if "Unknown encoder" in stderr:
        raise VideoWriteError(
            f"this ffmpeg has no encoder '{settings.codec}' for '{path}'; pick another codec "
            "(see 'ffmpeg -encoders')",
            fields=("codec",),
        )
    raise VideoWriteError(
        f"'{path.suffix}' files cannot hold {settings.codec} video ({pix_fmt}); use another "
        f"codec or name the output .mkv [ffmpeg: {stderr_tail(stderr, 1)}]",
        fields=("codec",),
    )


class FrameWriter:
    """Encodes frames from a pipe and muxes the input's other streams beside them.

    Frames are given as their ``uint8`` planes (:meth:`write_planes`: the Y plane and the U, V
    planes of ``in_pix_fmt``). Audio, subtitles and the rest follow ``plan``: stream copy by
    default, so audio stays bit-exact.
    The video starts at the same offset from the audio as in the input.

    Args:
        path: the file to write (restore passes a temporary name and renames it at the end).
        info: the probed input (size, rate, aspect, range, and the source of other streams).
        plan: from :func:`plan_streams`.
        settings: encoder and quality.
        start: seconds skipped in the input (cuts the other streams to match).
        duration: seconds read from the input.
        in_pix_fmt: the planar format of the frames given (default 4:4:4; restore sends the
            output's own 4:2:0 when it can, half the bytes and no conversion in ffmpeg).
        segment: write the encoded video alone (no other streams, no start offset): one piece
            of a resumable restore, joined later by a writer with ``segments``.
        segments: no frames are written: the video is stream-copied from this ffmpeg concat
            list of finished segments and muxed with the other streams as usual.
    """

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        plan: list[StreamPlan],
        settings: EncoderSettings,
        start: float | None = None,
        duration: float | None = None,
        in_pix_fmt: str | None = None,
        segment: bool = False,
        segments: Path | None = None,
    ) -> None:
        self.path = path
        self.info = info
        self.segment = segment
        self.segments = segments
        self.plan = [] if segment else plan
        self.settings = settings
        self.start = start
        self.duration = duration
        self.in_pix_fmt = in_pix_fmt or frame_pixel_format(info)
        self.pix_fmt = output_pixel_format(info.width, info.height, info.full_range)
        cw, ch = chroma_size(self.in_pix_fmt, info.width, info.height)
        self.frame_bytes = info.width * info.height + 2 * cw * ch
        self.frames_written = 0
        self._proc: subprocess.Popen | None = None
        self._drain: StderrDrain | None = None

    def command(self) -> list[str]:
        """The ffmpeg command line this writer runs."""
        info = self.info
        pipe_args: dict[str, object] = {
            "format": "rawvideo",
            "pix_fmt": self.in_pix_fmt,
            "s": f"{info.width}x{info.height}",
            "framerate": str(info.frame_rate),
        }
        offset = (
            {"itsoffset": f"{info.start_time:.6f}"} if info.start_time and not self.start else {}
        )
        if self.segments is not None:
            video = ffmpeg.input(media_path(self.segments), f="concat", safe=0, **offset)
            streams = [video["v:0"]]
            args: dict[str, object] = {"c:v": "copy"}
        else:
            if not self.segment:
                pipe_args.update(offset)
            video = ffmpeg.input("pipe:", **pipe_args)
            sar = info.sample_aspect_ratio
            # setsar reduces the ratio to terms of at most ``max`` (100): keep large ones exact.
            exact = max(100, sar.numerator, sar.denominator)
            video = video.filter("setsar", f"{sar.numerator}/{sar.denominator}", max=exact)
            streams = [video]
            args = dict(self.settings.args())
            args["pix_fmt"] = self.pix_fmt
            args["colorspace"] = "smpte170m"  # the model's chroma is BT.601 (see docs/contract.md)
            args["color_range"] = "pc" if info.full_range else "tv"
        kept = [p for p in self.plan if p.action != "drop"]
        if kept:
            source = ffmpeg.input(media_path(info.path), **trim_args(self.start, self.duration))
            for number, item in enumerate(kept, start=1):
                streams.append(source[str(item.stream.index)])
                args[f"c:{number}"] = "copy" if item.action == "copy" else item.encoder
        args["max_muxing_queue_size"] = 4096
        compiled = (
            ffmpeg.output(*streams, media_path(self.path), **args).overwrite_output().compile()
        )
        return ffmpeg_base() + compiled[1:]

    def mux(self) -> None:
        """Run a writer made with ``segments`` to the end (it takes no frames)."""
        with self:
            if self.segments is None:
                raise RuntimeError("FrameWriter.mux() needs segments")

    def __enter__(self) -> FrameWriter:
        self._proc = spawn(self.command(), stdin=True)
        self._drain = StderrDrain(self._proc.stderr)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write_planes(self, y: np.ndarray, uv: np.ndarray) -> None:
        """Send one frame as its Y plane (H, W) and U, V planes (2, h, w) of ``in_pix_fmt``.

        Raises:
            VideoWriteError: ffmpeg stopped (disk full, unwritable target, bad settings).
        """
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("FrameWriter used outside its 'with' block")
        if y.nbytes + uv.nbytes != self.frame_bytes or y.dtype != np.uint8 or uv.dtype != np.uint8:
            raise ValueError(f"planes {y.shape} + {uv.shape} do not match the writer")
        try:
            self._proc.stdin.write(np.ascontiguousarray(y).data)
            self._proc.stdin.write(np.ascontiguousarray(uv).data)
        except (BrokenPipeError, OSError) as err:
            self._proc.wait()
            raise self._failure(self._drain.text() if self._drain else "") from err
        self.frames_written += 1

    def _failure(self, stderr: str) -> VideoWriteError:
        lower = stderr.lower()
        if "no space left" in lower:
            return VideoWriteError(
                f"no space left on the disk while writing '{self.path.name}' in "
                f"'{self.path.parent}'; free some space or write elsewhere"
            )
        if "permission denied" in lower or "read-only" in lower:
            return VideoWriteError(
                f"cannot write in '{self.path.parent}' (permission denied); choose a writable "
                f"folder"
            )
        return VideoWriteError(
            f"ffmpeg failed while writing '{self.path}'; check the output settings "
            f"[ffmpeg: {stderr_tail(stderr)}]"
        )

    def close(self) -> None:
        """Finish encoding and wait for ffmpeg; raise :class:`VideoWriteError` if it failed."""
        if self._proc is None:
            return
        if self._proc.stdin:
            with contextlib.suppress(BrokenPipeError, OSError):  # ffmpeg may be gone already
                self._proc.stdin.close()
        code = self._proc.wait()
        stderr = self._drain.text() if self._drain else ""
        self._proc = None
        if code != 0:
            raise self._failure(stderr)

    def abort(self) -> None:
        """Stop ffmpeg at once (the partial file is the caller's to remove)."""
        if self._proc is None:
            return
        if self._proc.stdin:
            with contextlib.suppress(BrokenPipeError, OSError):  # ffmpeg may be gone already
                self._proc.stdin.close()
        stop(self._proc)
        self._proc.wait()
        self._proc = None


class BackgroundWriter:
    """Hands frames to a :class:`FrameWriter` on a thread, so encoding overlaps the model.

    At most ``depth`` frames wait; an error of the writer (disk full, ffmpeg gone) is raised
    at the next :meth:`write_planes` or at :meth:`finish`.
    """

    def __init__(self, writer: FrameWriter, depth: int = 8) -> None:
        import queue

        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="filmcolor-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_planes(*item)
                except BaseException as err:  # raised in the producer at its next call
                    self._error = err

    def write_planes(self, y: np.ndarray, uv: np.ndarray) -> None:
        """Queue one frame (see :meth:`FrameWriter.write_planes`)."""
        if self._error is not None:
            raise self._error
        self._queue.put((y, uv))

    def finish(self) -> None:
        """Wait until every queued frame is written; raise the writer's error if there was one."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Stop without waiting for the encoder (the writer is aborted by its ``with`` block)."""
        with contextlib.suppress(Exception):
            while True:
                self._queue.get_nowait()
        self._error = self._error or RuntimeError("abandoned")
        with contextlib.suppress(Exception):
            self._queue.put_nowait(None)
