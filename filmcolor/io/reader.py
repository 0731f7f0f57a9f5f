"""Frames out of a film through an ffmpeg pipe: the reader restore uses, a read-ahead thread, the
split reader of extract, a few sample frames.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import ffmpeg
import numpy as np

from ..errors import (
    FfmpegNotFoundError,
    UsageError,
    VideoReadError,
    stderr_tail,
)
from .probe import VideoInfo
from .process import (
    INSTALL_HINT,
    StderrDrain,
    ffmpeg_base,
    media_path,
    spawn,
    stop,
    trim_args,
    widen_pipe,
)

log = logging.getLogger(__name__)


def frame_pixel_format(info: VideoInfo) -> str:
    """The planar 4:4:4 format that keeps the input's luminance range unchanged."""
    return "yuvj444p" if info.full_range else "yuv444p"


def luma_pixel_format(info: VideoInfo) -> str:
    """The cheapest planar format whose Y plane is the input's, unchanged (restore reads only Y).

    4:2:0 (half the bytes of 4:4:4 through the pipe, and no chroma upsampling in ffmpeg) when
    both sides are even; chroma subsampling never touches the Y plane.
    """
    if info.width % 2 == 0 and info.height % 2 == 0:
        return "yuvj420p" if info.full_range else "yuv420p"
    return frame_pixel_format(info)


def chroma_size(pix_fmt: str, width: int, height: int) -> tuple[int, int]:
    """(width, height) of the U and V planes of planar ``pix_fmt``."""
    return (width // 2, height // 2) if pix_fmt.endswith("420p") else (width, height)


class Prefetch:
    """Reads frames on a thread into a bounded queue, so decoding overlaps the model.

    Pipe reads release the GIL; at most ``depth`` frames wait in memory. An error of the
    reader is raised in the consumer, where the frame would have been. ``reader`` is anything
    with a ``read()`` that gives the next frame or None at the end (a :class:`FrameReader`, or
    restore's repair).
    """

    def __init__(self, reader: Any, depth: int = 8) -> None:
        import queue

        self._reader = reader
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="filmcolor-read", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while (frame := self._reader.read()) is not None:
                if not self._put(frame):
                    return
            self._put(None)
        except BaseException as err:  # handed to the consumer, raised there
            self._put(err)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (the reader itself is closed by its own ``with`` block)."""
        self._stop.set()
        self._thread.join(timeout=5)


class FrameReader:
    """Streams decoded frames of a video through an ffmpeg pipe.

    Each frame is a ``uint8`` array: ``(3, H, W)`` Y, U, V planes for planar YUV formats,
    ``(H, W, 3)`` for ``rgb24``, ``(H, W)`` for ``gray``, ``(3H/2, W)`` I420 for ``yuv420p``
    (the cheapest to scale and pipe). Frames come in decode order with no
    duplicates or drops (``-vsync passthrough``); variable-frame-rate input is resampled to
    ``info.frame_rate`` (``-vsync cfr``), which :func:`probe` reports and restore logs.

    Args:
        info: the probed film.
        pix_fmt: rawvideo pixel format; default: planar 4:4:4 in the input's range.
        start: seconds to skip (input seeking, frame-accurate).
        duration: seconds to read from ``start``.
        size: optional (width, height) to scale to in ffmpeg.
        crop: optional (x, y, width, height) cut out before scaling (letterbox bars).
        keyframe_seek: start at the keyframe at or before ``start`` instead of decoding up to
            ``start`` exactly (a sample picture in a few milliseconds, whatever the GOP).
        luma_only: deliver only the Y plane of ``pix_fmt`` (a planar YUV format), unchanged,
            as ``(H, W)``: ffmpeg's ``extractplanes`` (a ``gray`` conversion would stretch a
            limited range to full). Restore reads no more: two thirds of the 4:2:0 bytes.
    """

    def __init__(
        self,
        info: VideoInfo,
        pix_fmt: str | None = None,
        start: float | None = None,
        duration: float | None = None,
        size: tuple[int, int] | None = None,
        crop: tuple[int, int, int, int] | None = None,
        keyframe_seek: bool = False,
        luma_only: bool = False,
    ) -> None:
        self.info = info
        self.crop = crop
        self.keyframe_seek = keyframe_seek
        self.pix_fmt = pix_fmt or frame_pixel_format(info)
        self.luma_only = luma_only
        self.width, self.height = size or (
            (crop[2], crop[3]) if crop else (info.width, info.height)
        )
        if luma_only and not self.pix_fmt.startswith("yuv"):
            raise UsageError(
                f"FrameReader: luma_only needs a planar YUV format, not {self.pix_fmt!r}"
            )
        if luma_only:
            self.frame_bytes = self.width * self.height
        elif self.pix_fmt in ("yuv444p", "yuvj444p", "rgb24", "bgr24"):
            self.frame_bytes = self.width * self.height * 3
        elif self.pix_fmt == "gray":
            self.frame_bytes = self.width * self.height
        elif (
            self.pix_fmt in ("yuv420p", "yuvj420p") and self.width % 2 == 0 and self.height % 2 == 0
        ):
            self.frame_bytes = self.width * self.height * 3 // 2
        else:
            raise UsageError(
                f"FrameReader cannot deliver pixel format {self.pix_fmt!r} at "
                f"{self.width}x{self.height}"
            )
        self.start = start
        self.duration = duration
        self.frames_read = 0
        self._proc: subprocess.Popen | None = None
        self._drain: StderrDrain | None = None
        self._finished = False

    def command(self) -> list[str]:
        """The ffmpeg command line this reader runs."""
        input_args = trim_args(self.start, self.duration)
        if self.keyframe_seek:
            input_args["noaccurate_seek"] = None
        stream = ffmpeg.input(media_path(self.info.path), **input_args)
        video = stream[str(self.info.video_index)]
        if self.crop is not None:
            x, y, w, h = self.crop
            video = video.filter("crop", w, h, x, y)
        if (self.width, self.height) != (
            (w, h) if self.crop else (self.info.width, self.info.height)
        ):
            video = video.filter("scale", self.width, self.height, flags="area")
        output_args: dict[str, object] = {"format": "rawvideo", "pix_fmt": self.pix_fmt}
        if self.luma_only:
            video = video.filter("format", self.pix_fmt).filter("extractplanes", "y")
            output_args["pix_fmt"] = "gray"
        if self.info.variable_frame_rate:
            output_args.update(vsync="cfr", r=str(self.info.frame_rate))
        else:
            output_args["vsync"] = "passthrough"
        compiled = ffmpeg.output(video, "pipe:", **output_args).compile()
        return ffmpeg_base() + compiled[1:]

    def __enter__(self) -> FrameReader:
        self._proc = spawn(self.command(), stdin=False)
        self._drain = StderrDrain(self._proc.stderr)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _shape(self) -> tuple[int, ...]:
        if self.luma_only:
            return (self.height, self.width)
        if self.pix_fmt in ("yuv444p", "yuvj444p"):
            return (3, self.height, self.width)
        if self.pix_fmt == "gray":
            return (self.height, self.width)
        if self.pix_fmt in ("yuv420p", "yuvj420p"):
            return (self.height * 3 // 2, self.width)  # I420, as cv2.COLOR_YUV2RGB_I420 takes it
        return (self.height, self.width, 3)

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end of the stream.

        Raises:
            VideoReadError: ffmpeg failed, or the stream ended inside a frame.
        """
        if self._proc is None:
            raise RuntimeError("FrameReader used outside its 'with' block")
        if self._finished:
            return None
        assert self._proc.stdout is not None
        buf = self._proc.stdout.read(self.frame_bytes)
        if len(buf) == self.frame_bytes:
            self.frames_read += 1
            return np.frombuffer(buf, np.uint8).reshape(self._shape())
        self._finished = True
        code = self._proc.wait()
        stderr = self._drain.text() if self._drain else ""
        if code != 0:
            raise VideoReadError(
                f"ffmpeg stopped after {self.frames_read} frames of '{self.info.path}' (exit "
                f"{code}); the file may be damaged [ffmpeg: {stderr_tail(stderr)}]"
            )
        if buf:
            raise VideoReadError(
                f"'{self.info.path}' ended inside frame {self.frames_read + 1}; the file is "
                f"truncated [ffmpeg: {stderr_tail(stderr)}]"
            )
        if self._drain and self._drain.error_lines:
            log.warning(
                "'%s': ffmpeg reported %d decoding errors; damaged frames were decoded as well "
                "as possible and kept [%s]",
                self.info.path,
                self._drain.error_lines,
                stderr_tail(stderr, 2),
            )
        return None

    @property
    def decode_errors(self) -> int:
        """Lines ffmpeg printed about decoding errors so far."""
        return self._drain.error_lines if self._drain else 0

    def stderr_text(self) -> str:
        """What ffmpeg has printed so far."""
        return self._drain.text() if self._drain else ""

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        """Stop ffmpeg (if the stream was not read to its end) and reap it."""
        if self._proc is not None:
            if self._proc.stdout:
                self._proc.stdout.close()
            stop(self._proc)
            self._proc.wait()


def sample_frames(info: VideoInfo, count: int = 3, width: int = 160) -> list[np.ndarray]:
    """A few small RGB frames spread over a film (the keyframes nearest to evenly spaced
    times), in a few tens of milliseconds each: to judge what a film looks like."""
    height = max(2, round(info.height * width / info.width / 2) * 2)
    length = info.duration or 0.0
    frames = []
    for number in range(count):
        at = length * (number + 0.5) / count
        with FrameReader(
            info, "rgb24", start=at or None, size=(width, height), keyframe_seek=True
        ) as reader:
            with contextlib.suppress(VideoReadError):
                frame = reader.read()
                if frame is not None:
                    frames.append(frame.copy())
    return frames


class SplitFrameReader:
    """One decode, two streams: every frame small, and every ``stride``-th frame large.

    For analysing a film cheaply: ffmpeg scales each frame down for the caller (e.g. cut
    detection) and sends only one in ``stride`` at the large size, through a second pipe, so
    the pipes carry a fraction of the full-size data. Iterating gives
    ``(index, small, large or None)``.

    Args:
        info: the probed film.
        small: (width, height) of the small stream: bgr24 ``(H, W, 3)``, or with ``luma``
            gray ``(H, W)``.
        large: (width, height) of the large stream: rgb24 ``(H, W, 3)``, or with ``luma`` the
            film's Y plane unchanged ``(H, W)`` (a third of the bytes, no colour conversion;
            :func:`filmcolor.color.luma_from_plane` reads it as restore does).
        stride: send frame n at the large size when n % stride == 0.
        luma: both streams carry brightness only (for B&W films; needs ``info``).
    """

    def __init__(
        self,
        info: VideoInfo | None,
        small: tuple[int, int],
        large: tuple[int, int],
        stride: int,
        *,
        path: Path | None = None,
        size: tuple[int, int] | None = None,
        luma: bool = False,
    ) -> None:
        self.info, self.small, self.large, self.stride = info, small, large, max(1, stride)
        assert info is not None or not luma, "luma needs the probed film"
        self.luma = luma
        if info is not None:
            path, size = info.path, (info.width, info.height)
        assert path is not None and size is not None, "give info, or path and size"
        self.path, self.size = Path(path), size
        # Before the probe: the first video stream that is not a cover picture, as probe picks.
        self.stream = str(info.video_index) if info is not None else "V:0"
        self.frames_read = 0
        self._proc: subprocess.Popen | None = None
        self._drain: StderrDrain | None = None
        self._closing = False
        self._small_q: Any = None
        self._queue: Any = None
        self._threads: list[threading.Thread] = []

    @classmethod
    def before_probe(
        cls,
        path: Path,
        size: tuple[int, int],
        small: tuple[int, int],
        large: tuple[int, int],
        stride: int,
    ) -> SplitFrameReader:
        """A reader for a film whose probe is still to come, made from a guess of its frame
        size (:func:`guess_size`): entered at once, ffmpeg starts up and decodes ahead while
        ffprobe runs. Call :meth:`confirm` with the probe before iterating."""
        return cls(None, small, large, stride, path=path, size=size)

    def confirm(self, info: VideoInfo) -> bool:
        """Whether a reader made by :meth:`before_probe` reads ``info`` as it should: the same
        frame size and a constant frame rate (a variable rate needs a filter made from the
        probe). When False, close it and open a reader from ``info``."""
        self.info = info
        return (info.width, info.height) == self.size and not info.variable_frame_rate

    def command(self, large_fd: int) -> list[str]:
        video = ffmpeg.input(media_path(self.path))[self.stream]
        if self.info is not None and self.info.variable_frame_rate:
            video = video.filter("fps", str(self.info.frame_rate))
        parts = video.filter_multi_output("split")
        small = parts[0].filter("scale", self.small[0], self.small[1], flags="fast_bilinear")
        large = parts[1].filter("select", f"not(mod(n,{self.stride}))")
        if self.large != self.size:
            large = large.filter("scale", self.large[0], self.large[1], flags="area")
        small_format, large_format = "bgr24", "rgb24"
        if self.luma:
            assert self.info is not None
            large = large.filter("format", luma_pixel_format(self.info))
            large = large.filter("extractplanes", "y")
            small_format, large_format = "gray", "gray"
        outs = [
            small.output("pipe:1", format="rawvideo", pix_fmt=small_format, vsync="passthrough"),
            large.output(
                f"pipe:{large_fd}", format="rawvideo", pix_fmt=large_format, vsync="passthrough"
            ),
        ]
        return ffmpeg_base() + ffmpeg.merge_outputs(*outs).compile()[1:]

    def __enter__(self) -> SplitFrameReader:
        return self.start()

    def start(self) -> SplitFrameReader:
        """Start ffmpeg and the pump threads (what ``with`` does); :meth:`close` stops them."""
        import queue

        read_fd, write_fd = os.pipe()
        try:
            cmd = self.command(write_fd)
            log.debug("running %s", " ".join(cmd))
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        except FileNotFoundError as err:
            os.close(read_fd)
            raise FfmpegNotFoundError(f"ffmpeg not found on PATH; {INSTALL_HINT}") from err
        finally:
            os.close(write_fd)
        self._drain = StderrDrain(self._proc.stderr)
        large_pipe = open(read_fd, "rb")
        for pipe in (self._proc.stdout, large_pipe):
            widen_pipe(pipe)
        # Each pipe is drained by a thread of its own into a bounded queue: ffmpeg writes the
        # two streams in its own order, and must never block on one while we wait on the other.
        self._small_q = queue.Queue(maxsize=512)
        self._queue = queue.Queue(maxsize=16)
        sw, sh = self.small
        lw, lh = self.large
        channels, dims = (1, 2) if self.luma else (3, 3)
        small_shape, large_shape = (sh, sw, channels)[:dims], (lh, lw, channels)[:dims]
        self._threads = [
            threading.Thread(
                target=self._pump,
                args=(self._proc.stdout, sw * sh * channels, small_shape, self._small_q),
                daemon=True,
            ),
            threading.Thread(
                target=self._pump,
                args=(large_pipe, lw * lh * channels, large_shape, self._queue),
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _pump(self, stream: Any, size: int, shape: tuple[int, int, int], out: Any) -> None:
        with stream:
            while not self._closing and len(chunk := stream.read(size)) == size:
                out.put(np.frombuffer(chunk, np.uint8).reshape(shape))
        out.put(None)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        assert self._proc is not None
        while (small := self._small_q.get()) is not None:
            index = self.frames_read
            self.frames_read += 1
            large = self._queue.get() if index % self.stride == 0 else None
            yield index, small, large
        code = self._proc.wait()
        if code != 0:
            stderr = self._drain.text() if self._drain else ""
            raise VideoReadError(
                f"ffmpeg stopped after {self.frames_read} frames of '{self.path}' (exit "
                f"{code}); the file may be damaged [ffmpeg: {stderr_tail(stderr)}]"
            )

    def close(self) -> None:
        """Stop ffmpeg and the pump threads."""
        self._closing = True
        if self._proc is not None:
            stop(self._proc)
            self._proc.wait()
        for q in (self._small_q, self._queue):
            while q is not None:  # unblock pumps waiting on a full queue
                try:
                    q.get_nowait()
                except Exception:  # queue.Empty
                    break
        for thread in self._threads:
            thread.join(timeout=5)
