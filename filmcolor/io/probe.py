"""What a film is: ffprobe's description of it, and the packet scan that counts frames and finds a
variable frame rate or a truncated file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import (
    VideoReadError,
    stderr_tail,
)
from .process import media_path, require_ffmpeg

# Still-image demuxers: such a file is a picture, not a film.
_IMAGE_FORMATS = ("image2", "gif")  # and every "*_pipe" demuxer (png_pipe, jpeg_pipe, ...)


def parse_fraction(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        value = Fraction(text.replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def parse_float(text: str | None) -> float | None:
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
        """The file's packets end measurably before the length it declares (see
        :func:`scan_timing`)."""
        return self.declared_duration is not None

    @property
    def full_range(self) -> bool:
        """True for full-range (JPEG, 'pc') luminance, False for the usual 16-235."""
        return self.color_range == "pc" or self.pix_fmt.startswith("yuvj")

    def seek_time(self, frames: int, start: float | None = None) -> float | None:
        """The input seek (seconds, as ``-ss`` takes it) whose first decoded frame is frame
        ``frames`` counted from the first frame at or after ``start`` (None: the film's first).

        ffmpeg seeks in the file's timeline, whose zero is the earliest stream's start: the
        video stream may begin later (a few tens of milliseconds in many Matroska files), and
        its frames lie at ``start_time + n / fps``. Half a frame before the frame wanted, so
        that rounded time stamps land on it. None when nothing is to be skipped.
        """
        if not frames and start is None:
            return None
        fps = float(self.frame_rate)
        first = 0
        if start is not None and start > self.start_time:
            first = math.ceil((start - self.start_time) * fps - 1e-6)
        return max(0.0, self.start_time + (first + frames - 0.5) / fps) if frames else start

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
        width, height = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
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
    cmd = [
        ffprobe_bin,
        "-v",
        "warning",
        "-of",
        "json",
        "-show_format",
        "-show_streams",
        media_path(path),
    ]
    done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise VideoReadError(_explain_probe_failure(path, stderr))
    try:
        data = json.loads(done.stdout)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VideoReadError(
            f"ffprobe gave unreadable output for '{path}'; check the file"
        ) from err
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
            f"'{path}' has no video stream (it holds {', '.join(kinds)}); give a file with a "
            f"picture"
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
    r_rate = parse_fraction(video.get("r_frame_rate"))
    avg_rate = parse_fraction(video.get("avg_frame_rate"))
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
    sar = parse_fraction(video.get("sample_aspect_ratio")) or Fraction(1)
    duration = parse_float(video.get("duration")) or parse_float(fmt.get("duration"))
    nb_frames = video.get("nb_frames")
    frame_count = (
        int(nb_frames) if nb_frames and str(nb_frames).isdigit() and int(nb_frames) > 0 else None
    )
    bits = video.get("bits_per_raw_sample")
    pix_fmt = video.get("pix_fmt", "unknown")
    bit_depth = int(bits) if bits and str(bits).isdigit() else (10 if "10" in pix_fmt else 8)
    video_start = parse_float(video.get("start_time")) or 0.0
    container_start = parse_float(fmt.get("start_time")) or 0.0
    start = video_start - container_start
    # Where the file says it ends, to compare with where its packets end (scan_timing).
    declared_end = None
    video_length = parse_float(video.get("duration"))
    if video_length:
        declared_end = video_start + video_length
    elif (
        parse_float(fmt.get("duration"))
        and "estimating duration from bitrate" not in stderr.lower()
    ):
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
        time_base=parse_fraction(video.get("time_base")) or Fraction(1, 90000),
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
        ffprobe_bin,
        "-v",
        "error",
        "-show_entries",
        "packet=stream_index,pts_time,duration_time",
        "-of",
        "csv=p=0",
        media_path(info.path),
    ]
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
        pts = parse_float(fields[1]) if len(fields) > 1 else None
        if pts is None:
            continue
        end = pts + ((parse_float(fields[2]) or 0.0) if len(fields) > 2 else 0.0)
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
        info,
        frame_count=declared or count,
        variable_frame_rate=True,
        frame_rate=rate,
        duration=info.duration or span,
        **truncated,
    )


REORDER_TAIL = 16
"""Time stamps at the end of a truncated file that may have gaps where B-frames were cut off
(H.264 and HEVC reorder at most 16 frames)."""


def count_video_packets(path: Path) -> int:
    """Packets of a file's first video stream, counted by demuxing it (no decoding)."""
    _, ffprobe_bin = require_ffmpeg()
    cmd = [
        ffprobe_bin,
        "-v",
        "error",
        "-select_streams",
        "V:0",
        "-count_packets",
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
        media_path(path),
    ]
    done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    text = done.stdout.decode("ascii", "replace").strip().rstrip(",")
    return int(text) if done.returncode == 0 and text.isdigit() else 0


def _tidy_rate(rate: float) -> Fraction:
    """An average frame rate as a short fraction: 19.99 -> 20, 23.97 -> 24000/1001."""
    for candidate in (Fraction(round(rate)), Fraction(round(rate * 1.001) * 1000, 1001)):
        if candidate > 0 and abs(float(candidate) - rate) / rate < 0.002:
            return candidate
    return Fraction(rate).limit_denominator(1001)
