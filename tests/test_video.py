"""video.py: probing, frame pipes and stream plans on real ffmpeg output."""

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import make_clip, run_ffmpeg

from filmcolor.errors import FfmpegNotFoundError, VideoReadError
from filmcolor.io.probe import probe
from filmcolor.io.process import require_ffmpeg
from filmcolor.io.reader import FrameReader
from filmcolor.io.streams import plan_streams


def test_probe_synthetic_clip(gray_clip: Path):
    info = probe(gray_clip)
    assert (info.width, info.height) == (96, 64)
    assert info.frame_rate == Fraction(25)
    assert info.frame_count == 50
    assert info.estimated_frames == 50
    assert abs(info.duration - 2.0) < 0.05
    assert not info.variable_frame_rate and not info.full_range
    assert [s.codec_type for s in info.streams] == ["video", "audio"]
    assert [s.codec_type for s in info.other_streams] == ["audio"]


def test_probe_ntsc_rate_is_exact(clips: Path):
    info = probe(make_clip(clips / "ntsc.mp4", seconds=0.5, rate="24000/1001", audio=False))
    assert info.frame_rate == Fraction(24000, 1001)


def test_probe_rotation_swaps_displayed_size(clips: Path):
    source = make_clip(clips / "landscape.mp4", seconds=0.4, size="64x32", audio=False)
    rotated = clips / "rotated.mp4"
    run_ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = probe(rotated)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (32, 64)
    with FrameReader(info) as reader:
        first = reader.read()
    assert first is not None and first.shape == (3, 64, 32)


def test_reader_streams_every_frame_in_constant_memory(gray_clip: Path):
    info = probe(gray_clip)
    with FrameReader(info) as reader:
        shapes = {frame.shape for frame in reader}
        assert reader.frames_read == 50
    assert shapes == {(3, 64, 96)}


def test_reader_rgb_and_trim(gray_clip: Path):
    info = probe(gray_clip)
    with FrameReader(info, pix_fmt="rgb24", start=1.0, duration=0.4) as reader:
        frames = list(reader)
    assert len(frames) == 10
    rgb = frames[0].astype(int)
    assert frames[0].shape == (64, 96, 3)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 3  # the clip is gray


def test_reader_closes_early_without_leaving_ffmpeg(gray_clip: Path):
    info = probe(gray_clip)
    with FrameReader(info) as reader:
        reader.read()
        proc = reader._proc
    assert proc is not None and proc.poll() is not None


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("missing.mp4", None, "does not exist"),
        ("empty.mp4", b"", r"empty \(0 bytes\)"),
        ("notes.mp4", b"this is a text file, not a film\n" * 20, "not a video"),
        (
            "random.mkv",
            bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
            "not a video",
        ),
    ],
)
def test_probe_rejects_bad_files(tmp_path: Path, name: str, content: bytes | None, needle: str):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VideoReadError, match=needle) as caught:
        probe(path)
    assert name in str(caught.value)


def test_probe_rejects_audio_only_and_still_images(tmp_path: Path):
    audio = tmp_path / "sound.m4a"
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(audio))
    with pytest.raises(VideoReadError, match="no video stream"):
        probe(audio)
    picture = tmp_path / "still.png"
    run_ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=32x32:duration=0.04", "-frames:v", "1", str(picture)
    )
    with pytest.raises(VideoReadError, match="still image"):
        probe(picture)


def test_probe_truncated_mp4_names_the_cause(gray_clip: Path, tmp_path: Path):
    data = gray_clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov is at the end: it is gone
    with pytest.raises(VideoReadError, match="truncated"):
        probe(cut)


def test_missing_ffmpeg_names_the_fix(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FfmpegNotFoundError, match="apt-get install ffmpeg"):
        require_ffmpeg()


def test_plan_copies_what_the_container_holds(gray_clip: Path, tmp_path: Path):
    info = probe(gray_clip)
    assert [p.action for p in plan_streams(info, tmp_path / "o.mp4")] == ["copy"]
    assert [p.action for p in plan_streams(info, tmp_path / "o.mkv")] == ["copy"]
    webm = plan_streams(info, tmp_path / "o.webm")  # AAC cannot go into WebM
    assert webm[0].action == "encode" and webm[0].encoder == "libopus"


def test_seek_time_lands_on_the_frame_wanted_when_the_video_starts_after_the_sound(
    clips: Path,
):
    """Matroska with AAC: the video's first frame is at 23 ms. Segments (--jobs, a cluster)
    and --resume seek to frame n; a seek that ignored the video's start decoded frame n - 1."""
    info = probe(make_clip(clips / "late_video.mkv", seconds=2))
    assert info.start_time == pytest.approx(0.023)
    assert info.seek_time(0) is None and info.seek_time(0, 1.01) == 1.01
    for frames, start in ((10, None), (1, 1.01), (7, 0.5)):
        at = info.seek_time(frames, start)
        first = 0 if start is None else math.ceil((start - info.start_time) * 25)
        wanted = info.start_time + (first + frames) / 25  # the frame's own time stamp
        assert wanted - 0.04 < at < wanted, (frames, start)
        with FrameReader(info, start=at, luma_only=True, pix_fmt="yuv420p") as reader:
            got = next(iter(reader))
        with FrameReader(info, luma_only=True, pix_fmt="yuv420p") as reader:
            every = [y for _, y in zip(range(first + frames + 1), reader, strict=False)]
        assert np.array_equal(got, every[first + frames]), (frames, start)
