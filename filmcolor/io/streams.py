"""What happens to a film's other streams (audio, subtitles, ...) in the output: copied, re-encoded
or dropped, tried with ffmpeg itself.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import (
    stderr_tail,
)
from .probe import StreamInfo, VideoInfo
from .process import ffmpeg_base, media_path, trial


@dataclass(frozen=True)
class StreamPlan:
    """What happens to one non-video stream of the input in the output."""

    stream: StreamInfo
    action: str
    """'copy' (bit-exact), 'encode' (the container cannot hold the codec) or 'drop'."""
    encoder: str | None = None
    reason: str = ""


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
            base = ffmpeg_base() + ["-i", media_path(info.path), "-map", f"0:{stream.index}"]
            limit = ["-t", "2"] if stream.codec_type in ("audio", "video") else []
            ok, stderr = trial(base + ["-c", "copy", *limit, "-y", str(target)])
            if ok:
                plans.append(StreamPlan(stream, "copy"))
                continue
            encoder = None
            if stream.codec_type == "audio":
                encoder = _AUDIO_FALLBACK.get(suffix, "aac")
            elif stream.codec_type == "subtitle":
                encoder = _SUBTITLE_FALLBACK.get(suffix, "ass")
            if encoder:
                ok2, stderr2 = trial(base + ["-c", encoder, *limit, "-y", str(target)])
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
