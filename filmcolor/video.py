"""Video in and out through ffmpeg: probing, streaming frames, and writing them back.

Frames travel through ffmpeg rawvideo pipes (built with ffmpeg-python), so memory stays
constant whatever the film's length and no frame ever touches the disk. Example::

    info = probe(Path("reel1.mp4"))
    with FrameReader(info) as reader, FrameWriter(Path("out.mp4"), info, plan) as writer:
        for planes in reader:          # uint8 (3, H, W): Y, U, V at full resolution
            writer.write(planes)

The reader yields planar YUV 4:4:4 by default so that the luminance plane can pass through
restore untouched (an RGB round trip changes it); ``pix_fmt="rgb24"`` gives HxWx3 RGB.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import ffmpeg
import numpy as np

from .errors import (
    FfmpegNotFoundError,
    UsageError,
    VideoReadError,
    VideoWriteError,
    stderr_tail,
)

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install it: 'sudo apt-get install ffmpeg' (Debian/Ubuntu), 'brew install ffmpeg' (macOS), "
    "or see https://ffmpeg.org/download.html, then make sure it is on PATH"
)

# Still-image demuxers: such a file is a picture, not a film.
_IMAGE_FORMATS = ("image2", "gif")  # and every "*_pipe" demuxer (png_pipe, jpeg_pipe, ...)


def require_ffmpeg() -> tuple[str, str]:
    """Return the paths of ffmpeg and ffprobe, or raise :class:`FfmpegNotFoundError`."""
    found = {name: shutil.which(name) for name in ("ffmpeg", "ffprobe")}
    missing = [name for name, where in found.items() if where is None]
    if missing:
        raise FfmpegNotFoundError(f"{' and '.join(missing)} not found on PATH; {INSTALL_HINT}")
    return found["ffmpeg"], found["ffprobe"]  # type: ignore[return-value]


def _ffmpeg_base() -> list[str]:
    ffmpeg_bin, _ = require_ffmpeg()
    return [ffmpeg_bin, "-nostdin", "-hide_banner", "-v", "error"]


def media_path(path: Path | str) -> str:
    """A file name as ffmpeg and ffprobe must be given it: absolute, so that a name such as
    ``-dash.mp4`` is never read as an option, nor ``a:b.mp4`` as a protocol."""
    return os.path.abspath(path)


def _fraction(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        value = Fraction(text.replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "N/A") else None  # type: ignore[arg-type]
    except ValueError:
        return None


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file."""

    index: int
    """Absolute stream index in the file (ffmpeg's 0:N)."""
    codec_type: str
    """'video', 'audio', 'subtitle', 'data' or 'attachment'."""
    codec_name: str
    """ffmpeg's codec name (h264, mp3, vorbis, subrip, ...)."""
    attached_pic: bool = False
    """A cover picture stored as a video stream."""
    language: str | None = None
    """Language tag, when the file has one."""


@dataclass(frozen=True)
class VideoInfo:
    """What filmcolor needs to know about a film, from ffprobe."""

    path: Path
    format_name: str
    width: int
    """Displayed width, after rotation (what decoded frames have)."""
    height: int
    """Displayed height, after rotation."""
    coded_width: int
    coded_height: int
    rotation: int
    """Display rotation in degrees (0, 90, 180, 270); decoded frames are already upright."""
    sample_aspect_ratio: Fraction
    frame_rate: Fraction
    """Exact rational frame rate of the output (r_frame_rate, or the average for VFR input)."""
    variable_frame_rate: bool
    time_base: Fraction
    start_time: float
    """Start of the video stream relative to the start of the file, in seconds."""
    duration: float | None
    frame_count: int | None
    """Frames as the container states them (None when it does not, as in mkv/webm)."""
    pix_fmt: str
    color_range: str | None
    color_space: str | None
    bit_depth: int
    video_index: int
    """Absolute index of the video stream that is restored."""
    streams: tuple[StreamInfo, ...] = field(default=())
    video_start: float = 0.0
    """Start of the video stream in the file's own timestamps (seconds)."""
    declared_end: float | None = None
    """Where the file says it ends, in its own timestamps: the video stream's end where it
    states its duration (MP4, MOV), else the container's (Matroska, WebM); None when there is
    none, or ffprobe only estimated it from the bit rate."""
    declared_end_is_video: bool = False
    """``declared_end`` is the video stream's own (else the whole file's, every stream)."""
    declared_duration: float | None = None
    """Set by :func:`scan_timing` for a truncated file only: the length it declares, while
    ``duration`` and ``frame_count`` are then what it really holds."""

    @property
    def truncated(self) -> bool:
        """The file's packets end measurably before the length it declares (see :func:`scan_timing`)."""
        return self.declared_duration is not None

    @property
    def full_range(self) -> bool:
        """True for full-range (JPEG, 'pc') luminance, False for the usual 16-235."""
        return self.color_range == "pc" or self.pix_fmt.startswith("yuvj")

    @property
    def estimated_frames(self) -> int | None:
        """Frame count, or duration x frame rate when the container does not say."""
        if self.frame_count and not self.variable_frame_rate:
            return self.frame_count
        if self.duration:
            return max(1, round(self.duration * float(self.frame_rate)))
        return self.frame_count

    @property
    def other_streams(self) -> list[StreamInfo]:
        """Every stream except the restored video stream (audio, subtitles, ...)."""
        return [s for s in self.streams if s.index != self.video_index]


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise VideoReadError(f"'{path}' does not exist; check the path")
    if path.is_dir():
        raise VideoReadError(f"'{path}' is a folder, not a video file; give a video file")
    if not os.access(path, os.R_OK):
        raise VideoReadError(f"'{path}' cannot be read (permission denied); check its permissions")
    if path.stat().st_size == 0:
        raise VideoReadError(f"'{path}' is empty (0 bytes); the copy or download did not finish")


def _explain_probe_failure(path: Path, stderr: str) -> str:
    lower = stderr.lower()
    with open(path, "rb") as handle:
        head = handle.read(12)
    looks_like_mp4 = head[4:8] in (b"ftyp", b"mdat", b"moov", b"free", b"wide", b"skip")
    if "moov atom not found" in lower and looks_like_mp4:
        return (
            f"'{path}' is truncated or damaged (moov atom not found): the file was not finished "
            "being written or copied; copy it again from its source"
        )
    if "invalid data" in lower or "could not find codec" in lower or "unknown format" in lower:
        return (
            f"'{path}' is not a video that ffmpeg can read (invalid data); check that it is a "
            f"video file and not damaged [ffprobe: {stderr_tail(stderr, 1)}]"
        )
    return f"cannot read '{path}' with ffprobe; check the file [ffprobe: {stderr_tail(stderr, 2)}]"


def guess_size(path: Path) -> tuple[int, int, float] | None:
    """(width, height, fps) of a film as OpenCV's built-in demuxer reads them, in a few
    milliseconds and in this process: a guess to start decoding before :func:`probe` (ffprobe,
    a process start) is back, which the probe then confirms. None when OpenCV cannot open it."""
    # OpenCV's own FFmpeg would print its complaints about a damaged file: ffprobe reports them.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read at first use
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()
    return (width, height, fps) if width > 0 and height > 0 and fps > 0 else None


def probe(path: Path) -> VideoInfo:
    """Describe a video file with ffprobe.

    Args:
        path: the film.

    Returns:
        A :class:`VideoInfo` of its first real video stream (cover pictures are skipped).

    Raises:
        VideoReadError: the file is missing, unreadable, not a video or has no video stream.
        FfmpegNotFoundError: ffprobe is not installed.
    """
    path = Path(path)
    _check_readable(path)
    _, ffprobe_bin = require_ffmpeg()
    # At warning level: ffprobe then says when it only estimated the length from the bit rate.
    cmd = [ffprobe_bin, "-v", "warning", "-of", "json", "-show_format", "-show_streams", media_path(path)]
    done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise VideoReadError(_explain_probe_failure(path, stderr))
    try:
        data = json.loads(done.stdout)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VideoReadError(f"ffprobe gave unreadable output for '{path}'; check the file") from err
    fmt = data.get("format", {})
    streams = []
    for raw in data.get("streams", []):
        streams.append(
            StreamInfo(
                index=int(raw["index"]),
                codec_type=raw.get("codec_type", "data"),
                codec_name=raw.get("codec_name", "unknown"),
                attached_pic=bool(raw.get("disposition", {}).get("attached_pic", 0)),
                language=raw.get("tags", {}).get("language"),
            )
        )
    videos = [
        raw
        for raw, info in zip(data.get("streams", []), streams, strict=True)
        if info.codec_type == "video" and not info.attached_pic
    ]
    format_name = fmt.get("format_name", "")
    if not videos:
        kinds = sorted({s.codec_type for s in streams}) or ["no streams"]
        raise VideoReadError(
            f"'{path}' has no video stream (it holds {', '.join(kinds)}); give a file with a picture"
        )
    if format_name == "gif" and count_video_packets(path) > 1:
        raise VideoReadError(
            f"'{path}' is an animated GIF, not a film; convert it to a video first "
            f"(ffmpeg -i '{path.name}' '{path.stem}.mkv') and restore that"
        )
    if format_name in _IMAGE_FORMATS or format_name.endswith("_pipe"):
        raise VideoReadError(
            f"'{path}' is a still image ({format_name}), not a film; restore takes videos "
            "(make one with: ffmpeg -loop 1 -i picture.png -t 5 clip.mp4)"
        )
    video = videos[0]
    width, height = int(video.get("width", 0)), int(video.get("height", 0))
    if width <= 0 or height <= 0:
        raise VideoReadError(f"'{path}' has a video stream with no frame size; the file is damaged")
    rotation = 0
    for side in video.get("side_data_list", []) or []:
        if "rotation" in side:
            rotation = int(round(float(side["rotation"])))
    if "rotate" in video.get("tags", {}):
        rotation = int(video["tags"]["rotate"])
    rotation %= 360
    if rotation in (90, 270):
        shown_w, shown_h = height, width
    else:
        shown_w, shown_h = width, height
    r_rate = _fraction(video.get("r_frame_rate"))
    avg_rate = _fraction(video.get("avg_frame_rate"))
    if r_rate is None and avg_rate is None:
        raise VideoReadError(
            f"cannot read the frame rate of '{path}'; re-mux it with 'ffmpeg -i IN -c copy OUT.mkv'"
        )
    variable = bool(r_rate and avg_rate and abs(r_rate - avg_rate) / avg_rate > Fraction(1, 500))
    rate = (avg_rate if variable else r_rate) or avg_rate or r_rate
    assert rate is not None  # for the type checker: one of the two is set above
    if variable:
        # Use a short exact fraction for the output (e.g. 7.5 fps, not 1432/191).
        rate = rate.limit_denominator(1001)
    sar = _fraction(video.get("sample_aspect_ratio")) or Fraction(1)
    duration = _float(video.get("duration")) or _float(fmt.get("duration"))
    nb_frames = video.get("nb_frames")
    frame_count = int(nb_frames) if nb_frames and str(nb_frames).isdigit() and int(nb_frames) > 0 else None
    bits = video.get("bits_per_raw_sample")
    pix_fmt = video.get("pix_fmt", "unknown")
    bit_depth = int(bits) if bits and str(bits).isdigit() else (10 if "10" in pix_fmt else 8)
    video_start = _float(video.get("start_time")) or 0.0
    container_start = _float(fmt.get("start_time")) or 0.0
    start = video_start - container_start
    # Where the file says it ends, to compare with where its packets end (scan_timing).
    declared_end = None
    video_length = _float(video.get("duration"))
    if video_length:
        declared_end = video_start + video_length
    elif _float(fmt.get("duration")) and "estimating duration from bitrate" not in stderr.lower():
        declared_end = container_start + float(fmt["duration"])
    return VideoInfo(
        path=path,
        format_name=format_name,
        width=shown_w,
        height=shown_h,
        coded_width=width,
        coded_height=height,
        rotation=rotation,
        sample_aspect_ratio=sar,
        frame_rate=rate,
        variable_frame_rate=variable,
        time_base=_fraction(video.get("time_base")) or Fraction(1, 90000),
        start_time=max(0.0, start),
        duration=duration,
        frame_count=frame_count,
        pix_fmt=pix_fmt,
        color_range=video.get("color_range"),
        color_space=video.get("color_space"),
        bit_depth=bit_depth,
        video_index=int(video["index"]),
        streams=tuple(streams),
        video_start=video_start,
        declared_end=declared_end,
        declared_end_is_video=bool(video_length),
    )


def scan_timing(info: VideoInfo) -> VideoInfo:
    """Read the file's packet timestamps (no decoding) to count frames, find a variable frame
    rate, and find a file that ends before the length it declares.

    Containers such as mkv and webm state neither the frame count nor whether the frame rate
    varies (their average rate is often just the nominal one). This demuxes the file once
    (a few seconds for a feature film) and returns ``info`` with the packet count as
    ``frame_count`` and, for a variable frame rate, ``frame_rate`` set to the average rate.

    A file whose packets end measurably before the end it declares (its video stream's
    where the stream states it, else the whole file's, any stream) is truncated: a copy or a
    download that stopped, a damaged disk. Its ``declared_duration`` is then set and its
    ``duration`` and ``frame_count`` are what it really holds. That is judged on time stamps
    alone, whatever the frame rate: B-frames missing at the cut make the last time stamps
    uneven, so the frame-rate test then leaves out the last :data:`REORDER_TAIL` of them.
    """
    _, ffprobe_bin = require_ffmpeg()
    cmd = [
        ffprobe_bin, "-v", "error", "-show_entries", "packet=stream_index,pts_time,duration_time",
        "-of", "csv=p=0", media_path(info.path),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise VideoReadError(
            f"cannot read the packets of '{info.path}'; the file is damaged "
            f"[ffprobe: {stderr_tail(done.stderr)}]"
        )
    stamps: list[float] = []
    video_end = file_end = -np.inf
    for line in done.stdout.decode("ascii", "replace").splitlines():
        fields = line.strip().rstrip(",").split(",")
        pts = _float(fields[1]) if len(fields) > 1 else None
        if pts is None:
            continue
        end = pts + ((_float(fields[2]) or 0.0) if len(fields) > 2 else 0.0)
        file_end = max(file_end, end)
        if fields[0] == str(info.video_index):
            stamps.append(pts)
            video_end = max(video_end, end)
    count = len(stamps)
    declared = info.frame_count  # what the index says: a truncated file has fewer packets
    truncated = {}
    reached = video_end if info.declared_end_is_video else file_end
    slack = max(0.2, 3 / float(info.frame_rate))
    if count and info.declared_end is not None and reached < info.declared_end - slack:
        truncated = {
            "declared_duration": info.declared_end - info.video_start,
            "duration": max(0.0, video_end - info.video_start),
        }
        declared = None
    if count < 3:
        return dataclasses.replace(info, frame_count=declared or count, **truncated)
    times = np.sort(np.array(stamps))
    if truncated and count > 2 * REORDER_TAIL:
        times = times[:-REORDER_TAIL]
    steps = np.diff(times)
    median = float(np.median(steps))
    variable = median > 0 and float(steps.max() - steps.min()) > 0.5 * median
    if not variable:
        return dataclasses.replace(info, frame_count=declared or count, **truncated)
    span = float(times[-1] - times[0]) + median
    rate = _tidy_rate(len(times) / span) if span > 0 else info.frame_rate
    return dataclasses.replace(
        info, frame_count=declared or count, variable_frame_rate=True, frame_rate=rate,
        duration=info.duration or span, **truncated,
    )  # fmt: skip


REORDER_TAIL = 16
"""Time stamps at the end of a truncated file that may have gaps where B-frames were cut off
(H.264 and HEVC reorder at most 16 frames)."""


def count_video_packets(path: Path) -> int:
    """Packets of a file's first video stream, counted by demuxing it (no decoding)."""
    _, ffprobe_bin = require_ffmpeg()
    cmd = [
        ffprobe_bin, "-v", "error", "-select_streams", "V:0", "-count_packets",
        "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", media_path(path),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    text = done.stdout.decode("ascii", "replace").strip().rstrip(",")
    return int(text) if done.returncode == 0 and text.isdigit() else 0


def _tidy_rate(rate: float) -> Fraction:
    """An average frame rate as a short fraction: 19.99 -> 20, 23.97 -> 24000/1001."""
    for candidate in (Fraction(round(rate)), Fraction(round(rate * 1.001) * 1000, 1001)):
        if candidate > 0 and abs(float(candidate) - rate) / rate < 0.002:
            return candidate
    return Fraction(rate).limit_denominator(1001)


class _StderrDrain:
    """Reads a child's stderr on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream) -> None:  # noqa: ANN001 - a binary file object
        self.lines: deque[str] = deque(maxlen=200)
        self.error_lines = 0
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:  # noqa: ANN001
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.lines.append(line)
                if "error" in line.lower():
                    self.error_lines += 1
        stream.close()

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self.lines)


PIPE_BYTES = 1 << 20
"""Pipe buffer asked for the frame pipes (Linux's default is 64 KiB: a 720p frame would cross
it in ~20 pieces, each a wake-up of both sides; 1 MiB is the unprivileged maximum)."""


def _widen_pipe(stream: Any) -> None:
    """Give a frame pipe a larger buffer where the system allows it (Linux); harmless elsewhere."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError, ValueError):
        pass  # not Linux, or a lower pipe-max-size: the default buffer works, a little slower


def _spawn(cmd: list[str], *, stdin: bool) -> subprocess.Popen:
    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if stdin else subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            start_new_session=True,
        )
    except FileNotFoundError as err:
        raise FfmpegNotFoundError(f"ffmpeg not found on PATH; {INSTALL_HINT}") from err
    _widen_pipe(proc.stdin if stdin else proc.stdout)
    return proc


def _stop(proc: subprocess.Popen | None) -> None:
    """Terminate a child and reap it (kill when it does not stop within 5 s)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_children(timeout: float = 5.0) -> int:
    """Stop every ffmpeg and ffprobe child of this process (SIGTERM, then SIGKILL after
    ``timeout``) and reap them; returns how many there were. For the way out after an error or
    an interrupt: an interrupt can land between the start of an ffmpeg process and the
    ``with`` block that would stop it, and such a child (in a session of its own) would
    outlive us. Linux only (it reads /proc); elsewhere nothing is done."""
    me = str(os.getpid())
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if fields.get("PPid", "").strip() == me and fields.get("Name", "").strip() in ("ffmpeg", "ffprobe"):
                children.append(int(status.parent.name))
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in children:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # reaped elsewhere (its Popen), or not ours after all
            if done or time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                break
            time.sleep(0.01)
    return len(children)


def _trim_args(start: float | None, duration: float | None) -> dict[str, object]:
    """ffmpeg input options that cut [start, start + duration) out of a file (both optional)."""
    args: dict[str, object] = {}
    if start:
        args["ss"] = f"{start:.6f}"
    if duration:
        args["t"] = f"{duration:.6f}"
    return args


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
    reader is raised in the consumer, where the frame would have been.
    """

    def __init__(self, reader: FrameReader, depth: int = 8) -> None:
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
        self.width, self.height = size or ((crop[2], crop[3]) if crop else (info.width, info.height))
        if luma_only and not self.pix_fmt.startswith("yuv"):
            raise UsageError(f"FrameReader: luma_only needs a planar YUV format, not {self.pix_fmt!r}")
        if luma_only:
            self.frame_bytes = self.width * self.height
        elif self.pix_fmt in ("yuv444p", "yuvj444p", "rgb24", "bgr24"):
            self.frame_bytes = self.width * self.height * 3
        elif self.pix_fmt == "gray":
            self.frame_bytes = self.width * self.height
        elif self.pix_fmt in ("yuv420p", "yuvj420p") and self.width % 2 == 0 and self.height % 2 == 0:
            self.frame_bytes = self.width * self.height * 3 // 2
        else:
            raise UsageError(f"FrameReader cannot deliver pixel format {self.pix_fmt!r} at {self.width}x{self.height}")
        self.start = start
        self.duration = duration
        self.frames_read = 0
        self._proc: subprocess.Popen | None = None
        self._drain: _StderrDrain | None = None
        self._finished = False

    def command(self) -> list[str]:
        """The ffmpeg command line this reader runs."""
        input_args = _trim_args(self.start, self.duration)
        if self.keyframe_seek:
            input_args["noaccurate_seek"] = None
        stream = ffmpeg.input(media_path(self.info.path), **input_args)
        video = stream[str(self.info.video_index)]
        if self.crop is not None:
            x, y, w, h = self.crop
            video = video.filter("crop", w, h, x, y)
        if (self.width, self.height) != ((w, h) if self.crop else (self.info.width, self.info.height)):
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
        return _ffmpeg_base() + compiled[1:]

    def __enter__(self) -> FrameReader:
        self._proc = _spawn(self.command(), stdin=False)
        self._drain = _StderrDrain(self._proc.stderr)
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
            _stop(self._proc)
            self._proc.wait()


def sample_frames(info: VideoInfo, count: int = 3, width: int = 160) -> list[np.ndarray]:
    """A few small RGB frames spread over a film (the keyframes nearest to evenly spaced
    times), in a few tens of milliseconds each: to judge what a film looks like."""
    height = max(2, round(info.height * width / info.width / 2) * 2)
    length = info.duration or 0.0
    frames = []
    for number in range(count):
        at = length * (number + 0.5) / count
        with FrameReader(info, "rgb24", start=at or None, size=(width, height), keyframe_seek=True) as reader:
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
    ``(index, small_bgr, large_rgb or None)``.

    Args:
        info: the probed film.
        small: (width, height) of the small stream (bgr24).
        large: (width, height) of the large stream (rgb24).
        stride: send frame n at the large size when n % stride == 0.
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
    ) -> None:
        self.info, self.small, self.large, self.stride = info, small, large, max(1, stride)
        if info is not None:
            path, size = info.path, (info.width, info.height)
        assert path is not None and size is not None, "give info, or path and size"
        self.path, self.size = Path(path), size
        # Before the probe: the first video stream that is not a cover picture, as probe picks.
        self.stream = str(info.video_index) if info is not None else "V:0"
        self.frames_read = 0
        self._proc: subprocess.Popen | None = None
        self._drain: _StderrDrain | None = None
        self._closing = False
        self._small_q: Any = None
        self._queue: Any = None
        self._threads: list[threading.Thread] = []

    @classmethod
    def before_probe(
        cls, path: Path, size: tuple[int, int], small: tuple[int, int], large: tuple[int, int], stride: int
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
        outs = [
            small.output("pipe:1", format="rawvideo", pix_fmt="bgr24", vsync="passthrough"),
            large.output(f"pipe:{large_fd}", format="rawvideo", pix_fmt="rgb24", vsync="passthrough"),
        ]
        return _ffmpeg_base() + ffmpeg.merge_outputs(*outs).compile()[1:]

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
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(write_fd,), start_new_session=True,
            )  # fmt: skip
        except FileNotFoundError as err:
            os.close(read_fd)
            raise FfmpegNotFoundError(f"ffmpeg not found on PATH; {INSTALL_HINT}") from err
        finally:
            os.close(write_fd)
        self._drain = _StderrDrain(self._proc.stderr)
        # Each pipe is drained by a thread of its own into a bounded queue: ffmpeg writes the
        # two streams in its own order, and must never block on one while we wait on the other.
        self._small_q = queue.Queue(maxsize=512)
        self._queue = queue.Queue(maxsize=16)
        sw, sh = self.small
        lw, lh = self.large
        self._threads = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, sw * sh * 3, (sh, sw, 3), self._small_q), daemon=True),
            threading.Thread(target=self._pump, args=(open(read_fd, "rb"), lw * lh * 3, (lh, lw, 3), self._queue), daemon=True),
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
            _stop(self._proc)
            self._proc.wait()
        for q in (self._small_q, self._queue):
            while q is not None:  # unblock pumps waiting on a full queue
                try:
                    q.get_nowait()
                except Exception:  # queue.Empty
                    break
        for thread in self._threads:
            thread.join(timeout=5)


@dataclass(frozen=True)
class StreamPlan:
    """What happens to one non-video stream of the input in the output."""

    stream: StreamInfo
    action: str
    """'copy' (bit-exact), 'encode' (the container cannot hold the codec) or 'drop'."""
    encoder: str | None = None
    reason: str = ""


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


def _trial(cmd: list[str], timeout: float = 60) -> tuple[bool, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    return done.returncode == 0, done.stderr.decode("utf-8", "replace")


def check_output(path: Path, settings: EncoderSettings, pix_fmt: str) -> None:
    """Check that ffmpeg knows the output's container and that it holds the video codec.

    Raises:
        VideoWriteError: unknown extension, or a codec the container cannot hold.
    """
    with tempfile.TemporaryDirectory(prefix="filmcolor-check-") as tmp:
        target = Path(tmp) / f"check{path.suffix}"
        source = ffmpeg.input("color=c=gray:s=16x16:d=0.08:r=25", f="lavfi")
        args = settings.args() | {"pix_fmt": pix_fmt}
        cmd = _ffmpeg_base() + ffmpeg.output(source, str(target), **args).compile()[1:]
        ok, stderr = _trial(cmd)
    if ok:
        return
    if "suitable output format" in stderr or "Invalid argument" in stderr and not path.suffix:
        raise VideoWriteError(
            f"ffmpeg does not know the output type of '{path}' (extension "
            f"'{path.suffix or 'none'}'); name it .mp4, .mkv, .mov or .webm"
        )
    if "Unknown encoder" in stderr:
        raise VideoWriteError(
            f"this ffmpeg has no encoder '{settings.codec}' for '{path}'; pick another --codec "
            "(see 'ffmpeg -encoders')"
        )
    raise VideoWriteError(
        f"'{path.suffix}' files cannot hold {settings.codec} video ({pix_fmt}); use another "
        f"--codec or name the output .mkv [ffmpeg: {stderr_tail(stderr, 1)}]"
    )


_AUDIO_FALLBACK = {".webm": "libopus", ".ogg": "libvorbis"}
_SUBTITLE_FALLBACK = {".mp4": "mov_text", ".m4v": "mov_text", ".mov": "mov_text", ".webm": "webvtt"}


def plan_streams(info: VideoInfo, output: Path) -> list[StreamPlan]:
    """Decide for each non-video stream whether it is copied, re-encoded or dropped.

    A stream is stream-copied (bit-exact) whenever the output container accepts its codec;
    this is tried with ffmpeg itself on a short piece, not guessed from a table. Otherwise
    audio is re-encoded (AAC, or Opus for .webm) and text subtitles converted; what cannot be
    carried at all (e.g. bitmap subtitles in .mp4) is dropped with a warning.
    """
    plans: list[StreamPlan] = []
    suffix = output.suffix.lower()
    with tempfile.TemporaryDirectory(prefix="filmcolor-plan-") as tmp:
        for number, stream in enumerate(info.other_streams):
            target = Path(tmp) / f"s{number}{output.suffix}"
            base = _ffmpeg_base() + ["-i", media_path(info.path), "-map", f"0:{stream.index}"]
            limit = ["-t", "2"] if stream.codec_type in ("audio", "video") else []
            ok, stderr = _trial(base + ["-c", "copy", *limit, "-y", str(target)])
            if ok:
                plans.append(StreamPlan(stream, "copy"))
                continue
            encoder = None
            if stream.codec_type == "audio":
                encoder = _AUDIO_FALLBACK.get(suffix, "aac")
            elif stream.codec_type == "subtitle":
                encoder = _SUBTITLE_FALLBACK.get(suffix, "ass")
            if encoder:
                ok2, stderr2 = _trial(base + ["-c", encoder, *limit, "-y", str(target)])
                if ok2:
                    plans.append(
                        StreamPlan(
                            stream,
                            "encode",
                            encoder,
                            f"'{suffix}' cannot hold {stream.codec_name}; re-encoded as {encoder}",
                        )
                    )
                    continue
                stderr = stderr2
            plans.append(
                StreamPlan(
                    stream,
                    "drop",
                    None,
                    f"'{suffix}' cannot hold {stream.codec_type} stream {stream.index} "
                    f"({stream.codec_name}); dropped; name the output .mkv to keep it "
                    f"[ffmpeg: {stderr_tail(stderr, 1)}]",
                )
            )
    return plans


class FrameWriter:
    """Encodes frames from a pipe and muxes the input's other streams beside them.

    Frames are ``uint8`` planar YUV 4:4:4 arrays ``(3, H, W)`` (the reader's default). Audio,
    subtitles and the rest follow ``plan``: stream copy by default, so audio stays bit-exact.
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
        self._drain: _StderrDrain | None = None

    def command(self) -> list[str]:
        """The ffmpeg command line this writer runs."""
        info = self.info
        pipe_args: dict[str, object] = {
            "format": "rawvideo",
            "pix_fmt": self.in_pix_fmt,
            "s": f"{info.width}x{info.height}",
            "framerate": str(info.frame_rate),
        }
        offset = {"itsoffset": f"{info.start_time:.6f}"} if info.start_time and not self.start else {}
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
            source = ffmpeg.input(media_path(info.path), **_trim_args(self.start, self.duration))
            for number, item in enumerate(kept, start=1):
                streams.append(source[str(item.stream.index)])
                args[f"c:{number}"] = "copy" if item.action == "copy" else item.encoder
        args["max_muxing_queue_size"] = 4096
        compiled = ffmpeg.output(*streams, media_path(self.path), **args).overwrite_output().compile()
        return _ffmpeg_base() + compiled[1:]

    def mux(self) -> None:
        """Run a writer made with ``segments`` to the end (it takes no frames)."""
        with self:
            if self.segments is None:
                raise RuntimeError("FrameWriter.mux() needs segments")

    def __enter__(self) -> FrameWriter:
        self._proc = _spawn(self.command(), stdin=True)
        self._drain = _StderrDrain(self._proc.stderr)
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

    def write(self, frame: np.ndarray) -> None:
        """Send one planar 4:4:4 frame ``(3, H, W)`` to the encoder (see :meth:`write_planes`)."""
        self.write_planes(frame[0], frame[1:])

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
                f"cannot write in '{self.path.parent}' (permission denied); choose a writable folder"
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
        _stop(self._proc)
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
