"""restore.py end to end: real ffmpeg on real files, counting frames and hashing audio."""

from pathlib import Path

import numpy as np
import pytest
from conftest import (
    AFFINE_U,
    AFFINE_V,
    decoded_frames,
    ffprobe_json,
    make_clip,
    md5_of_stream,
    read_planes,
    run_ffmpeg,
    sha256,
    video_stream,
    y_psnr,
)

from filmcolor.config import RestoreConfig
from filmcolor.errors import UsageError, VideoReadError, VideoWriteError
from filmcolor.io.probe import probe, scan_timing
from filmcolor.restore.pipeline import restore
from filmcolor.restore.segments import work_folder


def _cfg(model: Path, **kwargs) -> RestoreConfig:
    return RestoreConfig(model=model, device="cpu", preset="ultrafast", **kwargs)


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if "filmcolor-part" in p.name or "filmcolor-work" in p.name]


def test_restore_keeps_frames_duration_audio_and_luma(
    gray_clip: Path, affine_model: Path, tmp_path: Path
):
    before = sha256(gray_clip)
    out = tmp_path / "color.mp4"
    result = restore(gray_clip, out, _cfg(affine_model), preview=tmp_path / "sheet.png")
    assert result.frames == 50 and out.is_file() and not _leftovers(tmp_path)
    assert decoded_frames(out) == 50
    assert abs(float(video_stream(out)["duration"]) - 2.0) <= 1 / 25
    assert md5_of_stream(out) == md5_of_stream(gray_clip)
    src, dst = read_planes(gray_clip), read_planes(out)
    assert y_psnr(src[:, 0], dst[:, 0]) >= 40
    mid = (src[:, 0] > 80) & (src[:, 0] < 140)  # mid-gray: the model's colour fits there whole
    assert (
        abs(np.median(dst[:, 1][mid]) - AFFINE_U) < 2
        and abs(np.median(dst[:, 2][mid]) - AFFINE_V) < 2
    )
    assert result.preview is not None and result.preview.stat().st_size > 1000
    assert sha256(gray_clip) == before


def test_restore_without_model_uses_the_shipped_default(gray_clip: Path, tmp_path: Path):
    from filmcolor.model.contract import default_model_path, int8_path

    out = tmp_path / "default.mp4"
    result = restore(gray_clip, out, RestoreConfig(device="cpu", preset="ultrafast"))
    assert (
        result.model in (default_model_path(), int8_path(default_model_path()))
        and result.model.is_file()
    )
    assert decoded_frames(out) == 50
    chroma = read_planes(out)[:, 1:].astype(float) - 128
    assert np.abs(chroma).mean() > 0.5  # the default model adds colour


def test_restore_mkv_with_two_audio_tracks_and_subtitles(
    clips: Path, affine_model: Path, tmp_path: Path
):
    srt = tmp_path / "subs.srt"
    srt.write_text(
        "1\n00:00:00,000 --> 00:00:01,000\nHello\n\n2\n00:00:01,000 --> 00:00:02,000\nWorld\n"
    )
    source = tmp_path / "multi.mkv"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=80x48:rate=24:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=900:duration=2",
        "-i",
        str(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-map",
        "3",
        "-vf",
        "hue=s=0",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a:0",
        "libvorbis",
        "-c:a:1",
        "flac",
        "-c:s",
        "srt",
        str(source),
    )
    out = tmp_path / "multi_color.mkv"
    result = restore(source, out, _cfg(affine_model))
    kinds = [s["codec_type"] for s in ffprobe_json(out)["streams"]]
    assert kinds == ["video", "audio", "audio", "subtitle"]
    assert [p.action for p in result.streams] == ["copy", "copy", "copy"]
    for selector in ("0:a:0", "0:a:1", "0:s:0"):
        assert md5_of_stream(out, selector) == md5_of_stream(source, selector)
    assert decoded_frames(out) == decoded_frames(source) == 48


def test_restore_mkv_to_mp4_converts_what_mp4_cannot_hold(
    clips: Path, affine_model: Path, tmp_path: Path
):
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nHello\n")
    source = tmp_path / "subs.mkv"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-i",
        str(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-c:s",
        "srt",
        str(source),
    )
    out = tmp_path / "subs.mp4"
    result = restore(source, out, _cfg(affine_model))
    assert [(p.action, p.encoder) for p in result.streams] == [
        ("copy", None),
        ("encode", "mov_text"),
    ]
    assert [s["codec_name"] for s in ffprobe_json(out)["streams"]] == ["h264", "aac", "mov_text"]
    assert md5_of_stream(out) == md5_of_stream(source)


def test_odd_size(clips: Path, affine_model: Path, tmp_path: Path):
    source = make_clip(clips / "odd.mkv", size="65x49", seconds=0.6, pix_fmt="yuv444p")
    out = tmp_path / "odd_color.mkv"
    restore(source, out, _cfg(affine_model))
    stream = video_stream(out)
    assert (stream["width"], stream["height"]) == (65, 49)
    assert int(stream["nb_read_frames"]) == 15


def test_rotation_is_kept_as_displayed(clips: Path, affine_model: Path, tmp_path: Path):
    plain = make_clip(clips / "wide.mp4", size="64x32", seconds=0.4)
    rotated = tmp_path / "rot.mp4"
    run_ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    out = tmp_path / "rot_color.mp4"
    restore(rotated, out, _cfg(affine_model))
    assert (
        (probe(out).width, probe(out).height)
        == (probe(rotated).width, probe(rotated).height)
        == (32, 64)
    )


def test_sample_aspect_ratio_is_kept(clips: Path, affine_model: Path, tmp_path: Path):
    source = make_clip(clips / "anamorphic.mp4", seconds=0.4, filters="setsar=4/3")
    out = tmp_path / "anamorphic_color.mp4"
    restore(source, out, _cfg(affine_model))
    assert probe(out).sample_aspect_ratio == probe(source).sample_aspect_ratio != 1


def test_variable_frame_rate_is_made_constant_with_the_same_duration(
    affine_model: Path, tmp_path: Path
):
    source = tmp_path / "vfr.mkv"
    # Frames at 10 fps for 1 s, then 30 fps for 1 s: a variable frame rate.
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=30:duration=2",
        "-vf",
        "select='gte(t,1)+not(mod(n,3))',hue=s=0",
        "-vsync",
        "vfr",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(source),
    )
    assert not probe(source).variable_frame_rate  # mkv does not say: the packets do
    info = scan_timing(probe(source))
    assert info.variable_frame_rate and info.frame_count == 40
    out = tmp_path / "vfr_color.mkv"
    restore(source, out, _cfg(affine_model))
    result = scan_timing(probe(out))
    assert not result.variable_frame_rate and result.frame_rate == 20
    assert abs(result.duration - info.duration) <= 2 / float(info.frame_rate) + 0.01


@pytest.mark.parametrize(
    ("pix_fmt", "name"),
    [
        ("yuvj420p", "full.mp4"),
        ("yuv420p10le", "ten.mkv"),
        ("gray", "gray.mkv"),
        ("bgr0", "rgb.mkv"),
    ],
)
def test_full_range_ten_bit_gray_and_rgb_inputs(
    clips: Path, affine_model: Path, tmp_path: Path, pix_fmt: str, name: str
):
    """yuvj (full range), 10-bit, the gray pixel format, and grayscale stored as RGB."""
    codec = ("-c:v", "ffv1") if pix_fmt in ("gray", "bgr0") else ()
    source = make_clip(clips / name, seconds=0.4, pix_fmt=pix_fmt, audio=False, extra=codec)
    out = tmp_path / f"color_{name}"
    restore(source, out, _cfg(affine_model))
    assert decoded_frames(out) == decoded_frames(source)
    assert y_psnr(read_planes(source)[:, 0], read_planes(out)[:, 0]) >= 40
    assert read_planes(out)[:, 1].std() < read_planes(out)[:, 1].mean()  # chroma was written


def test_trim_with_start_and_duration(gray_clip: Path, affine_model: Path, tmp_path: Path):
    out = tmp_path / "piece.mp4"
    result = restore(gray_clip, out, _cfg(affine_model, start=0.5, duration=1.0))
    assert result.frames == decoded_frames(out) == 25


def test_refuses_existing_output_and_output_equal_to_input(
    gray_clip: Path, affine_model: Path, tmp_path: Path
):
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="with overwrite"):
        restore(gray_clip, existing, _cfg(affine_model))
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(UsageError, match="is the input"):
        restore(gray_clip, gray_clip, _cfg(affine_model, overwrite=True))


def test_missing_output_folder_and_unknown_extension(
    gray_clip: Path, affine_model: Path, tmp_path: Path
):
    with pytest.raises(VideoWriteError, match="does not exist"):
        restore(gray_clip, tmp_path / "nowhere" / "out.mp4", _cfg(affine_model))
    with pytest.raises(VideoWriteError, match="does not know the output type"):
        restore(gray_clip, tmp_path / "out.xyz", _cfg(affine_model))
    assert not list(tmp_path.iterdir())


def test_truncated_file_with_index_first_is_an_error_not_a_short_film(
    clips: Path, affine_model: Path, tmp_path: Path
):
    source = make_clip(
        clips / "faststart.mp4", seconds=4, size="160x120", extra=("-movflags", "+faststart")
    )
    cut = tmp_path / "cut.mp4"
    data = source.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="truncated"):
        restore(cut, tmp_path / "out.mp4", _cfg(affine_model))
    assert not (tmp_path / "out.mp4").exists() and not _leftovers(tmp_path)


def test_a_joined_film_short_of_its_frames_is_never_published(
    gray_clip: Path, affine_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The final mux is counted: a segment that lost frames (changed or removed while the
    restore ran) gives an error, never a shorter film."""
    import filmcolor.restore.segments as segments_module

    monkeypatch.setattr(segments_module, "count_video_packets", lambda path: 49)
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoWriteError, match="holds 49 of its 50 restored frames"):
        restore(gray_clip, out, _cfg(affine_model))
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_interruption_removes_the_partial_output(
    gray_clip: Path, affine_model: Path, tmp_path: Path
):
    out = tmp_path / "out.mp4"

    class Stop:
        def __init__(self, total):
            self.count = 0

        def update(self, n):
            self.count += n
            if self.count >= 8:
                assert work_folder(out).is_dir(), "frames are being written in the work folder"
                raise KeyboardInterrupt

        def close(self):
            self.closed = True

    with pytest.raises(KeyboardInterrupt):
        restore(gray_clip, out, _cfg(affine_model, batch_size=4), progress=Stop)
    assert not out.exists() and not _leftovers(tmp_path)


def test_real_chaplin_with_mp3_sound(shared_data: Path, affine_model: Path, tmp_path: Path):
    source = shared_data / "oldfilm_video" / "chaplin.mp4"
    out = tmp_path / "chaplin.mp4"
    restore(source, out, _cfg(affine_model, duration=3.0))
    assert decoded_frames(out) == 75
    assert y_psnr(read_planes(source)[:75, 0], read_planes(out)[:, 0]) >= 40


def test_real_webm_keeps_vorbis_bit_exact(shared_data: Path, affine_model: Path, tmp_path: Path):
    source = shared_data / "av_clips" / "big_buck_bunny_432_433.webm"
    out = tmp_path / "bunny.mkv"
    result = restore(source, out, _cfg(affine_model))
    assert [p.action for p in result.streams] == ["copy"]
    assert md5_of_stream(out) == md5_of_stream(source)
    assert decoded_frames(out) == decoded_frames(source)


@pytest.mark.slow
def test_done_when_chaplin_default_model(shared_data: Path, tmp_path: Path):
    """The issue's 'done when': whole Chaplin clip, default model, sound bit-exact, colour
    visible."""
    from filmcolor.color import yuv_to_rgb
    from filmcolor.evaluate.metrics import colourfulness

    source = shared_data / "oldfilm_video" / "chaplin.mp4"
    out = tmp_path / "chaplin_color.mp4"
    restore(source, out, RestoreConfig(device="cpu"))
    assert decoded_frames(out) == decoded_frames(source) == 241
    assert (
        abs(float(video_stream(out)["duration"]) - float(video_stream(source)["duration"]))
        <= 1 / 25
    )
    assert md5_of_stream(out) == md5_of_stream(source)
    src, dst = read_planes(source), read_planes(out)
    assert y_psnr(src[:, 0], dst[:, 0]) >= 40
    score = float(np.mean([colourfulness(yuv_to_rgb(f, False)) for f in dst[::10]]))
    assert score >= 8, f"colourfulness {score:.1f} < 8"


def test_jobs_auto_and_segment_length_plan(
    gray_clip: Path, affine_model: Path, monkeypatch: pytest.MonkeyPatch
):
    from dataclasses import replace

    import filmcolor.restore.pool as restore_module

    info = scan_timing(probe(gray_clip))
    plan = restore_module.plan_jobs
    cfg = _cfg(affine_model, jobs=0)
    monkeypatch.setattr(restore_module.os, "sched_getaffinity", lambda pid: set(range(2)))
    assert restore_module.auto_jobs() == 1
    assert (plan(cfg, info, 500, False).jobs, plan(cfg, info, 500, False).segment_seconds) == (
        1,
        60.0,
    )
    monkeypatch.setattr(restore_module.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert restore_module.auto_jobs() == 4
    assert restore_module.auto_jobs("cuda") == 1  # a GPU machine: one process keeps its CPU busy
    assert plan(cfg, info, 500, False, "cuda").jobs == 1
    monkeypatch.setattr(restore_module.os, "sched_getaffinity", lambda pid: set(range(96)))
    assert restore_module.auto_jobs() == 8
    fps = float(info.frame_rate)
    # 8 processes on a 2-minute film: 16 segments of 3.75 s -> 4 s (half seconds); at least 2 s.
    two_minutes = plan(cfg, info, round(120 * fps), False)
    assert (two_minutes.jobs, two_minutes.segment_seconds) == (8, 4.0)
    assert plan(cfg, info, round(10 * fps), False).segment_seconds == 2.0
    assert plan(cfg, info, round(90 * 60 * fps), False).segment_seconds == 60.0  # a feature film
    # Where segments cannot run in parallel, auto is one process with 60 s segments.
    for cut in (
        plan(replace(cfg, start=1.0), info, 500, False),
        plan(cfg, info, None, False),
        plan(cfg, info, 500, True),
    ):
        assert (cut.jobs, cut.segment_seconds) == (1, 60.0)
    # Explicit choices are kept.
    assert (
        plan(_cfg(affine_model, jobs=3, segment_seconds=7.0), info, 500, False).segment_seconds
        == 7.0
    )
    assert plan(_cfg(affine_model), info, 500, False).jobs == 1  # the Python API's default


@pytest.mark.parametrize("failure", ["no processes", "a worker killed"])
def test_jobs_auto_goes_on_in_one_process_when_workers_fail(
    clips: Path,
    affine_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog,
    failure: str,
):
    import concurrent.futures
    import concurrent.futures.process

    import filmcolor.restore.pool as restore_module

    class NoProcesses:
        def __init__(self, *args, **kwargs):
            raise OSError(38, "Function not implemented")

    class KilledWorker:  # every segment's worker dies (as under the OOM killer)
        _processes: dict = {}

        def __init__(self, workers, **kwargs):
            self.workers = workers

        def submit(self, *args, **kwargs):
            future = concurrent.futures.Future()
            future.set_exception(concurrent.futures.process.BrokenProcessPool("killed"))
            return future

        def shutdown(self, **kwargs):
            self.workers = 0

    source = make_clip(clips / "auto_jobs.mp4", seconds=4)
    pool = NoProcesses if failure == "no processes" else KilledWorker
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", pool)
    monkeypatch.setattr(restore_module, "auto_jobs", lambda device="cpu": 2)
    out = tmp_path / "auto.mp4"
    with caplog.at_level("WARNING", logger="filmcolor"):
        result = restore(source, out, _cfg(affine_model, jobs=0, segment_seconds=1.0))
    assert "jobs auto" in caplog.text and "one segment at a time" in caplog.text
    assert result.frames == decoded_frames(out) == decoded_frames(source) == 100
    assert md5_of_stream(out) == md5_of_stream(source), "audio bit-exact"
    # Asked for explicitly, the same failure is an error (and leaves nothing).
    with pytest.raises(VideoWriteError, match="jobs") as raised:
        restore(source, tmp_path / "two.mp4", _cfg(affine_model, jobs=2, segment_seconds=1.0))
    assert "jobs" in raised.value.fields
    assert _leftovers(tmp_path) == []
