"""The command line: one clear line per error, exit codes, signals, --help."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import (
    decoded_frames,
    make_clip,
    md5_of_stream,
    read_planes,
    run_ffmpeg,
    sha256,
    y_psnr,
)

from filmcolor.cli import main
from filmcolor.errors import FfmpegNotFoundError, UsageError, VideoReadError, VideoWriteError

FILMCOLOR = [sys.executable, "-m", "filmcolor.cli"]


def _sigint_default() -> None:
    """Popen's preexec_fn: Ctrl-C as a terminal sends it. A shell starts background jobs with
    SIGINT ignored, and Python then leaves it ignored: a suite started with `&` (as an agent or
    a script may) saw restore finish instead of stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _one_error_line(result, *needles: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, result.stderr
    assert "Traceback" not in result.output + result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_cli_reference_is_up_to_date():
    sys.path.insert(0, str(Path(__file__).parents[1] / "pipelines"))
    from gen_cli_docs import render

    docs = Path(__file__).parents[1] / "docs" / "cli.md"
    assert docs.read_text() == render(), "docs/cli.md is stale: run 'make docs'"


def test_restore_does_not_import_torch():
    code = (
        "import sys, filmcolor.cli, filmcolor.restore, filmcolor.restore.colorizer, "
        "filmcolor.io.probe; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_help_has_examples():
    result = _run(["restore", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--preview" in result.output
    assert "filmcolor train" in _run(["--help"]).output


def test_restore_cli_writes_video_and_preview(gray_clip: Path, affine_model: Path, tmp_path: Path):
    out = tmp_path / "out.mp4"
    result = _run(
        [
            "restore",
            str(gray_clip),
            str(out),
            "--model",
            str(affine_model),
            "--preview",
            str(tmp_path / "p.png"),
            "-q",
        ]
    )
    assert result.exit_code == 0, result.output
    assert decoded_frames(out) == 50 and (tmp_path / "p.png").is_file()


@pytest.mark.parametrize(
    ("make", "code", "needle"),
    [
        (lambda d: d / "missing.mp4", VideoReadError.exit_code, "does not exist"),
        (
            lambda d: (d / "text.mp4").write_text("hello\n" * 50) and d / "text.mp4",
            VideoReadError.exit_code,
            "not a video",
        ),
        (
            lambda d: (d / "empty.mkv").write_bytes(b"") or d / "empty.mkv",
            VideoReadError.exit_code,
            "empty",
        ),
    ],
)
def test_bad_inputs_exit_nonzero_with_one_line(
    tmp_path: Path, affine_model: Path, make, code: int, needle: str
):
    source = make(tmp_path)
    out = tmp_path / "out.mp4"
    result = _run(["restore", str(source), str(out), "--model", str(affine_model)])
    assert result.exit_code == code
    _one_error_line(result, needle, source.name)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "filmcolor-" in p.name]


def test_audio_only_file(tmp_path: Path, affine_model: Path):
    audio = tmp_path / "song.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(audio))
    result = _run(["restore", str(audio), str(tmp_path / "o.mp4"), "--model", str(affine_model)])
    assert result.exit_code == VideoReadError.exit_code
    _one_error_line(result, "no video stream", "song.mp4")


def test_truncated_input(gray_clip: Path, tmp_path: Path, affine_model: Path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(gray_clip.read_bytes()[: gray_clip.stat().st_size // 2])
    result = _run(["restore", str(cut), str(tmp_path / "o.mp4"), "--model", str(affine_model)])
    assert result.exit_code == VideoReadError.exit_code
    _one_error_line(result, "truncated", "cut.mp4")


def test_output_errors(gray_clip: Path, tmp_path: Path, affine_model: Path):
    missing_dir = _run(
        ["restore", str(gray_clip), str(tmp_path / "no" / "o.mp4"), "--model", str(affine_model)]
    )
    assert missing_dir.exit_code == VideoWriteError.exit_code
    _one_error_line(missing_dir, "does not exist", "mkdir")
    same = _run(
        ["restore", str(gray_clip), str(gray_clip), "--model", str(affine_model), "--overwrite"]
    )
    assert same.exit_code == UsageError.exit_code
    _one_error_line(same, "is the input")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(gray_clip: Path, tmp_path: Path, affine_model: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    result = _run(["restore", str(gray_clip), str(folder / "o.mp4"), "--model", str(affine_model)])
    assert result.exit_code == VideoWriteError.exit_code
    _one_error_line(result, "permission denied")


def test_missing_ffmpeg(gray_clip: Path, tmp_path: Path, affine_model: Path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    done = subprocess.run(
        [
            *FILMCOLOR,
            "restore",
            str(gray_clip),
            str(tmp_path / "o.mp4"),
            "--model",
            str(affine_model),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == FfmpegNotFoundError.exit_code
    assert "ffmpeg" in done.stderr and "apt-get install ffmpeg" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_bad_model(gray_clip: Path, tmp_path: Path):
    model = tmp_path / "bad.onnx"
    model.write_bytes(b"not onnx")
    result = _run(["restore", str(gray_clip), str(tmp_path / "o.mp4"), "--model", str(model)])
    assert result.exit_code != 0
    _one_error_line(result, "bad.onnx", "cannot be loaded")


def _ffmpeg_children(pid: int) -> list[str]:
    done = subprocess.run(["ps", "-eo", "pid,ppid,comm"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines()[1:] if line.split()[1] == str(pid)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_mid_run_leaves_nothing(
    clips: Path, tmp_path: Path, affine_model: Path, sig: signal.Signals
):
    source = make_clip(clips / f"long_{sig.name}.mp4", seconds=40, size="320x240")
    before = sha256(source)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [
            *FILMCOLOR,
            "restore",
            str(source),
            str(out),
            "--model",
            str(affine_model),
            "--preset",
            "veryslow",
            "-q",
        ],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    work = tmp_path / ".out.filmcolor-work"
    deadline = time.time() + 30
    while time.time() < deadline:
        part = next(work.glob(".part_seg_00000.*.nut"), None) if work.is_dir() else None
        if part is not None and part.stat().st_size > 0:
            break
        time.sleep(0.1)
    assert part is not None and part.exists(), "restore did not start writing"
    children = [line.split()[0] for line in _ffmpeg_children(proc.pid)]
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists() and not part.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [], (
        "no output, no temporary file, no work folder"
    )
    assert children and all(not Path(f"/proc/{pid}").exists() for pid in children)
    assert sha256(source) == before


def test_resume_after_kill_9_matches_an_uninterrupted_run(
    clips: Path, tmp_path: Path, affine_model: Path
):
    source = make_clip(clips / "resume.mp4", seconds=12, size="320x240")
    before = sha256(source)
    whole, resumed = tmp_path / "whole.mkv", tmp_path / "resumed.mkv"
    common = ["--model", str(affine_model), "--segment-seconds", "2", "-q"]
    done = subprocess.run(
        [*FILMCOLOR, "restore", str(source), str(whole), *common], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(
        [*FILMCOLOR, "restore", str(source), str(resumed), *common, "--preset", "veryslow"],
        stderr=subprocess.PIPE,
        text=True,
    )
    job = tmp_path / ".resumed.filmcolor-work" / "job.json"
    deadline = time.time() + 60
    while time.time() < deadline:
        if job.is_file() and len(json.loads(job.read_text())["segments"]) >= 2:
            break
        time.sleep(0.05)
    proc.kill()  # kill -9: no chance to clean up
    proc.communicate(timeout=30)
    segments = json.loads(job.read_text())["segments"]
    assert 2 <= len(segments) < 6 and not resumed.exists()
    done = subprocess.run(
        [
            *FILMCOLOR,
            "restore",
            str(source),
            str(resumed),
            *common,
            "--preset",
            "veryslow",
            "--resume",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert not job.parent.exists(), "the work folder is gone after the final mux"
    assert decoded_frames(resumed) == decoded_frames(source) == 300
    assert md5_of_stream(resumed) == md5_of_stream(source), "audio bit-exact"
    a, b = read_planes(whole), read_planes(resumed)
    assert a.shape == b.shape
    assert y_psnr(a[:, 0], b[:, 0]) > 40, "frames match within encoding noise"
    assert np.abs(a[:, 1:].astype(int) - b[:, 1:].astype(int)).mean() < 1.0
    assert sha256(source) == before


def test_resume_with_other_settings_starts_over(
    clips: Path, tmp_path: Path, affine_model: Path, caplog
):
    from filmcolor.config import RestoreConfig
    from filmcolor.restore.pipeline import restore
    from filmcolor.restore.segments import work_folder

    source = make_clip(clips / "resume_small.mp4", seconds=2, size="96x64")
    out = tmp_path / "o.mp4"
    work = work_folder(out)
    work.mkdir()
    (work / "job.json").write_text(
        json.dumps({"fingerprint": "other", "segment_frames": 25, "segments": [25]})
    )
    (work / "seg_00000.nut").write_bytes(b"not a video")
    result = restore(
        source, out, RestoreConfig(model=affine_model, resume=True, preset="ultrafast")
    )
    assert result.resumed_from == 0 and result.frames == 50
    assert "starting over" in caplog.text
    assert not work.exists()


def _descendants(pid: int) -> list[str]:
    """Pids of every process below ``pid`` (workers and their ffmpeg processes)."""
    done = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True)
    children: dict[str, list[str]] = {}
    for line in done.stdout.splitlines()[1:]:
        child, parent = line.split()
        children.setdefault(parent, []).append(child)
    found, todo = [], [str(pid)]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_jobs_restore_segments_in_parallel_into_the_same_film(
    clips: Path, tmp_path: Path, affine_model: Path, suffix: str
):
    """In the Matroska film the video starts 23 ms after the sound (AAC's priming): segments
    once seeked a frame early there, and the film had a frame twice at each joint."""
    source = make_clip(clips / f"jobs{suffix}", seconds=6, size="160x96")
    before = sha256(source)
    common = ["--model", str(affine_model), "--segment-seconds", "1", "--preset", "ultrafast", "-q"]
    one, four = tmp_path / f"one{suffix}", tmp_path / f"four{suffix}"
    for out, jobs in ((one, "1"), (four, "4")):
        done = subprocess.run(
            [*FILMCOLOR, "restore", str(source), str(out), *common, "--jobs", jobs],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    assert decoded_frames(four) == decoded_frames(source) == 150
    assert md5_of_stream(four) == md5_of_stream(source), "audio bit-exact"
    # Each segment starts a fresh colour stage either way: the same frames, to the bit.
    assert np.array_equal(read_planes(one), read_planes(four))
    assert sha256(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"four{suffix}", f"one{suffix}"]


def test_jobs_interrupted_leave_nothing(clips: Path, tmp_path: Path, affine_model: Path):
    source = make_clip(clips / "jobs_long.mp4", seconds=40, size="320x240")
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [
            *FILMCOLOR,
            "restore",
            str(source),
            str(out),
            "--model",
            str(affine_model),
            "--preset",
            "veryslow",
            "--segment-seconds",
            "5",
            "--jobs",
            "2",
            "-q",
        ],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    work = tmp_path / ".out.filmcolor-work"
    deadline = time.time() + 60
    while len(list(work.glob(".part_seg_*.nut"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert len(list(work.glob(".part_seg_*.nut"))) == 2, "two workers did not start writing"
    below = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], (
        "no output, no temporary file, no work folder"
    )
    time.sleep(0.5)
    alive = _running(below)
    assert below and not alive, f"no worker or ffmpeg left: {alive}"
    result = CliRunner().invoke(main, ["restore", str(source), str(out), "--jobs", "0"])
    _one_error_line(result, "--jobs")


def test_jobs_workers_stop_when_restore_is_killed(clips: Path, tmp_path: Path, affine_model: Path):
    source = make_clip(clips / "jobs_kill.mp4", seconds=20, size="320x240")
    out = tmp_path / "out.mp4"
    args = [
        *FILMCOLOR,
        "restore",
        str(source),
        str(out),
        "--model",
        str(affine_model),
        "--preset",
        "veryslow",
        "--segment-seconds",
        "4",
        "--jobs",
        "2",
        "--resume",
        "-q",
    ]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    work = tmp_path / ".out.filmcolor-work"
    deadline = time.time() + 60
    while len(list(work.glob(".part_seg_*.nut"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    below = _descendants(proc.pid)
    proc.kill()  # kill -9: restore itself has no chance to stop its workers
    proc.communicate(timeout=30)
    deadline = time.time() + 20
    while time.time() < deadline and _running(below):
        time.sleep(0.2)
    assert below and not _running(below), "the workers and their ffmpeg processes stop with restore"
    assert not out.exists()
    done = subprocess.run(
        args, capture_output=True, text=True
    )  # --resume: goes on from the finished segments
    assert done.returncode == 0, done.stderr
    assert decoded_frames(out) == decoded_frames(source) == 500
    assert md5_of_stream(out) == md5_of_stream(source), "audio bit-exact"
    assert not work.exists()


def _running(pids: list[str]) -> list[str]:
    """The processes of ``pids`` still running (zombies, dead and waiting to be reaped, do not
    count)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(") ", 1)[-1][:1] != "Z":
            alive.append(stat[:60])
    return alive


def test_library_errors_name_config_fields_and_the_cli_shows_its_options(
    gray_clip: Path, tmp_path: Path
):
    """The library says what a setting is called in its config; the command line shows the
    option that sets it."""
    from filmcolor.config import RestoreConfig, TemporalConfig

    with pytest.raises(UsageError) as raised:
        RestoreConfig(start=float("nan"))
    assert str(raised.value).startswith(
        "start must be a finite number"
    ) and raised.value.fields == ("start",)
    with pytest.raises(UsageError) as raised:
        TemporalConfig(strength=3.0)
    assert str(raised.value).startswith("strength must be between 0 and 2")
    result = _run(["restore", str(gray_clip), str(tmp_path / "o.mp4"), "--temporal-strength", "3"])
    assert result.exit_code == UsageError.exit_code
    _one_error_line(result, "--temporal-strength must be between 0 and 2")
    result = _run(["restore", str(gray_clip), str(tmp_path / "o.mp4"), "--start", "nan"])
    _one_error_line(result, "--start must be a finite number")
