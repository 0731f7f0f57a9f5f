"""The reliability corpus: odd and broken inputs, each with its outcome written down.

Every case is made here with ffmpeg (or by hand for broken bytes) and run through the real
``filmcolor`` command in its own process, with a time limit. For each: the input is unchanged
(SHA-256 before and after); the output is either complete and valid (ffprobe reads it, the
frame count and duration match) or absent; no temporary file or work folder is left; no
ffmpeg process is left running; an error is one line naming the file, with its exit code.
docs/troubleshooting.md lists the messages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import decoded_frames, ffprobe_json, make_clip, md5_of_stream, run_ffmpeg, sha256

FILMCOLOR = [sys.executable, "-m", "filmcolor"]
OK = 0
USAGE, NO_FFMPEG, READ, WRITE, ENGINE = 2, 3, 4, 5, 9


@dataclass
class Case:
    """A made input and what restore must do with it."""

    make: Callable[[Path], Path]
    code: int
    needle: str = ""
    frames: int | None = None  # expected output frames (None: the input's own count)
    args: list[str] = field(default_factory=list)
    output: str = "out.mp4"
    env: dict[str, str] = field(default_factory=dict)
    names_file: bool = True  # the error line names the input file
    quiet: bool = True  # run with -q (errors only); False where a warning is the point
    duration: bool = (
        True  # the output lasts as long as the input declares (not for a cut-off input)
    )
    relative: bool = (
        False  # run in the input's folder, naming the input and output without a folder
    )


def _clip(name: str, **kwargs) -> Callable[[Path], Path]:
    return lambda d: make_clip(d / name, **{"seconds": 1.0, **kwargs})


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return make


def _ffmpeg(name: str, *args: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        run_ffmpeg(*args, str(d / name))
        return d / name

    return make


def _truncated(faststart: bool) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        extra = ("-movflags", "+faststart") if faststart else ()
        full = make_clip(d / "full.mp4", seconds=2.0, extra=extra)
        data = full.read_bytes()
        full.unlink()
        target = d / ("cut_index_first.mp4" if faststart else "cut_moov_missing.mp4")
        target.write_bytes(data[: len(data) // 2])
        return target

    return make


def _cut_off(
    name: str, share: float, seconds: float, size: str = "96x64", extra: tuple[str, ...] = ()
) -> Callable[[Path], Path]:
    """A film whose copy stopped after ``share`` of its bytes (x264 with B-frames, AAC audio)."""

    def make(d: Path) -> Path:
        full = d / f"full{Path(name).suffix}"
        run_ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=24:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=duration={seconds}",
            "-vf",
            "hue=s=0",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            *extra,
            str(full),
        )
        data = full.read_bytes()
        full.unlink()
        (d / name).write_bytes(data[: int(len(data) * share)])
        return d / name

    return make


def _corrupted_middle(d: Path) -> Path:
    """An mp4 whose frame data is damaged in the middle (every 10th of 3,000 bytes replaced)."""
    source = make_clip(
        d / "good.mp4", seconds=2.0, size="160x96", extra=("-movflags", "+faststart")
    )
    data = bytearray(source.read_bytes())
    source.unlink()
    rng = np.random.default_rng(7)
    middle = len(data) // 2
    for position in range(middle, middle + 3000, 10):
        data[position] = int(rng.integers(0, 256))
    target = d / "damaged.mp4"
    target.write_bytes(bytes(data))
    return target


def _streams_mkv(d: Path) -> Path:
    clip = make_clip(d / "v.mkv", seconds=1.0, audio=False)
    srt = d / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,800\nHello\n", encoding="utf-8")
    run_ffmpeg(
        "-i",
        str(clip),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=600:duration=1",
        "-i",
        str(srt),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-map",
        "3:s",
        "-c:v",
        "copy",
        "-c:a",
        "libvorbis",
        "-c:s",
        "srt",
        str(d / "streams.mkv"),
    )
    return d / "streams.mkv"


def _vfr(d: Path) -> Path:
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=25:duration=2,hue=s=0",
        "-vf",
        "select='not(between(n,10,19))'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(d / "vfr.mkv"),
    )
    return d / "vfr.mkv"


def _odd_name(d: Path) -> Path:
    folder = d / "Archiv Brüder Lumière"
    folder.mkdir()
    return make_clip(folder / "Ankunft des Zuges – 1896.mp4", seconds=1.0)


def _dash_named(d: Path) -> Path:
    return make_clip(d / "-dash.mp4", seconds=1.0)


def _ffmpeg_missing(d: Path) -> Path:
    return make_clip(d / "fine.mp4", seconds=1.0)


CORPUS: dict[str, Case] = {
    # Broken or not a video: one line, exit 4, nothing written.
    "zero-byte file": Case(_bytes("empty.mp4", b""), READ, "empty"),
    "random bytes named .mp4": Case(
        _bytes("random.mp4", np.random.default_rng(0).bytes(8192)), READ, "not a video"
    ),
    "text file": Case(_bytes("notes.mp4", b"this is a text file\n" * 50), READ, "not a video"),
    "still image": Case(
        _ffmpeg("still.png", "-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1"),
        READ,
        "still image",
    ),
    "truncated mp4, moov missing": Case(_truncated(False), READ, "truncated"),
    "truncated mp4, index first": Case(_truncated(True), READ, "truncated"),
    "audio only": Case(
        _ffmpeg("audio.m4a", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"),
        READ,
        "no video stream",
    ),
    "missing input": Case(lambda d: d / "nowhere.mp4", READ, "does not exist"),
    "a folder as input": Case(
        lambda d: (d / "folder.mp4").mkdir() or d / "folder.mp4", READ, "folder"
    ),
    # Odd but valid: restored completely.
    "video without audio": Case(_clip("silent.mp4", audio=False), OK),
    "two audio tracks and subtitles (mkv)": Case(_streams_mkv, OK, output="out.mkv"),
    # 40 frames with a 0.4 s hole, average rate 20 fps: resampled to a constant 20 fps.
    "variable frame rate": Case(
        _vfr, OK, "variable frame rate", frames=42, output="out.mkv", quiet=False
    ),
    "odd width and height": Case(_clip("odd.mp4", size="97x65", pix_fmt="yuv444p"), OK),
    "rotation metadata 90 degrees": Case(
        _clip("rotated.mp4", extra=("-metadata:s:v:0", "rotate=90")), OK
    ),
    "anamorphic sample aspect ratio": Case(
        _clip("anamorphic.mp4", size="96x64", filters="setsar=4/3"), OK
    ),
    "interlaced": Case(
        _clip("interlaced.mkv", size="96x64", filters="interlace", extra=("-flags", "+ilme+ildct")),
        OK,
        output="out.mkv",
    ),
    "10-bit": Case(_clip("tenbit.mkv", pix_fmt="yuv420p10le"), OK, output="out.mkv"),
    "full-range yuvj420p": Case(_clip("fullrange.mp4", pix_fmt="yuvj420p"), OK),
    "gray pixel format (ffv1)": Case(
        _ffmpeg(
            "gray.mkv",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:duration=1",
            "-pix_fmt",
            "gray",
            "-c:v",
            "ffv1",
        ),
        OK,
        output="out.mkv",
    ),
    "one-frame video": Case(
        _ffmpeg(
            "one.mp4",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=96x64:rate=25",
            "-frames:v",
            "1",
            "-vf",
            "hue=s=0",
            "-c:v",
            "libx264",
        ),
        OK,
    ),
    "4K frame size": Case(
        _ffmpeg(
            "uhd.mp4",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=3840x2160:rate=25",
            "-frames:v",
            "3",
            "-vf",
            "hue=s=0",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ),
        OK,
    ),
    "path with spaces and non-ASCII letters": Case(_odd_name, OK),
    # Damaged frames are decoded as well as possible and kept; the errors are counted and said.
    "corrupted bytes in the middle": Case(
        _corrupted_middle, OK, "decoding errors were reported", quiet=False
    ),
    # Bad output or environment: one line, nothing written, input untouched.
    "output folder missing": Case(
        _clip("a.mp4"), WRITE, "does not exist", output="no/such/folder/out.mp4", names_file=False
    ),
    "output is the input": Case(_clip("same.mp4"), USAGE, "is the input file", output="same.mp4"),
    "output exists (no --overwrite)": Case(
        _clip("b.mp4"), USAGE, "already exists", output="b.mp4.exists", names_file=False
    ),
    "output extension ffmpeg does not know": Case(
        _clip("c.mp4"), WRITE, ".xyz", output="out.xyz", names_file=False
    ),
    "ffmpeg missing from PATH": Case(
        _ffmpeg_missing,
        NO_FFMPEG,
        "apt-get install ffmpeg",
        env={"PATH": "/nonexistent"},
        names_file=False,
    ),
    "corrupt ONNX model": Case(
        _clip("d.mp4"), ENGINE, "cannot be loaded", args=["--model", "BAD_MODEL"], names_file=False
    ),
    "model with the wrong contract": Case(
        _clip("e.mp4"), ENGINE, "maps", args=["--model", "WRONG_MODEL"], names_file=False
    ),
    "bad option value": Case(
        _clip("f.mp4"),
        USAGE,
        "--keyframe-interval",
        args=["--keyframe-interval", "often"],
        names_file=False,
    ),
    # A film that ends before its declared length is an error naming both lengths, never a
    # shorter film with exit 0 (--accept-truncated restores what it holds, said in a warning).
    "fast-start mp4 cut at 60% (B-frames)": Case(
        _cut_off("faststart_cut.mp4", 0.6, 3, "320x180", ("-movflags", "+faststart")),
        READ,
        "of the 3.0 s it declares",
    ),
    "fast-start mp4 cut at 60%, --accept-truncated": Case(
        _cut_off("faststart_cut2.mp4", 0.6, 3, "320x180", ("-movflags", "+faststart")),
        OK,
        "--accept-truncated",
        args=["--accept-truncated"],
        quiet=False,
        duration=False,
    ),
    "Matroska cut at 70%": Case(
        _cut_off("cut70.mkv", 0.7, 6), READ, "of the 6.0 s it declares", output="out.mkv"
    ),
    "Matroska cut at 92%": Case(
        _cut_off("cut92.mkv", 0.92, 6), READ, "truncated", output="out.mkv"
    ),
    "Matroska cut at 70%, --accept-truncated": Case(
        _cut_off("cut70b.mkv", 0.7, 6),
        OK,
        "--accept-truncated",
        args=["--accept-truncated"],
        output="out.mkv",
        quiet=False,
        duration=False,
    ),
    # A model whose output is not a number stops the restore (exit 9) instead of a green film.
    "model returns NaN": Case(
        _clip("n.mp4"), ENGINE, "NaN", args=["--model", "NAN_MODEL"], names_file=False
    ),
    "model returns NaN, --temporal none": Case(
        _clip("n2.mp4"),
        ENGINE,
        "NaN",
        args=["--model", "NAN_MODEL", "--temporal", "none"],
        names_file=False,
    ),
    "model returns NaN, --jobs 2": Case(
        _clip("n3.mp4", seconds=2.0),
        ENGINE,
        "NaN",
        args=["--model", "NAN_MODEL", "--jobs", "2", "--segment-seconds", "0.5"],
        names_file=False,
    ),
    # Frames smaller than optical flow and the model can take: one line naming the minimum.
    "2x2 frames": Case(_clip("two.mp4", size="2x2", pix_fmt="yuv444p"), READ, "at least 16x16"),
    "8x8 frames": Case(_clip("eight.mp4", size="8x8", pix_fmt="yuv444p"), READ, "at least 16x16"),
    "10x10 frames, --temporal none": Case(
        _clip("ten.mp4", size="10x10", pix_fmt="yuv444p"),
        READ,
        "at least 16x16",
        args=["--temporal", "none"],
    ),
    # Every float option is a finite number.
    "--start nan": Case(
        _clip("g1.mp4"),
        USAGE,
        "--start must be a finite number",
        args=["--start", "nan"],
        names_file=False,
    ),
    "--duration inf": Case(
        _clip("g2.mp4"),
        USAGE,
        "--duration must be a finite number",
        args=["--duration", "inf"],
        names_file=False,
    ),
    "--duration nan": Case(
        _clip("g3.mp4"),
        USAGE,
        "--duration must be a finite number",
        args=["--duration", "nan"],
        names_file=False,
    ),
    "--segment-seconds nan": Case(
        _clip("g4.mp4"),
        USAGE,
        "--segment-seconds must be a finite",
        args=["--segment-seconds", "nan"],
        names_file=False,
    ),
    "--temporal-strength nan": Case(
        _clip("g5.mp4"),
        USAGE,
        "--temporal-strength must be a finite",
        args=["--temporal-strength", "nan"],
        names_file=False,
    ),
    "--saturation inf": Case(
        _clip("g6.mp4"),
        USAGE,
        "--saturation must be a finite",
        args=["--saturation", "inf"],
        names_file=False,
    ),
    # The preview sheet's name is checked before any work (the film is never followed by an error).
    "--preview notes.txt": Case(
        _clip("p1.mp4"),
        USAGE,
        "not a picture name",
        args=["--preview", "notes.txt"],
        names_file=False,
    ),
    "--preview is the output": Case(
        _clip("p2.mp4"),
        USAGE,
        "is the output film",
        args=["--preview", "OUTPUT"],
        output="out.png",
        names_file=False,
    ),
    # Names that look like options reach ffmpeg and ffprobe as files.
    "input and output named -dash.mp4": Case(
        _dash_named, OK, output="-dash_color.mp4", relative=True
    ),
    "animated GIF": Case(
        _ffmpeg("anim.gif", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1"),
        READ,
        "animated GIF",
    ),
    "--start past the end": Case(
        _clip("short.mp4"), USAGE, "only 1.0 s long", args=["--start", "5"]
    ),
    "colour input": Case(_clip("colour.mp4", gray=False), OK, "already in colour", quiet=False),
    "sample aspect ratio with large terms (1001:1000)": Case(
        _clip("sar.mp4", filters="setsar=sar=1001/1000:max=10000"), OK
    ),
}


def _ffmpeg_processes(marker: str) -> list[str]:
    done = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "ffmpeg" in line and marker in line]


@dataclass
class Outcome:
    """What one run of a case gave (the rows of docs/troubleshooting.md's corpus table)."""

    source: Path
    out: Path
    stderr: str
    code: int
    check: str  # what was checked of the output


def run_case(case: Case, tmp_path: Path, models: dict[str, Path], timeout: float = 180) -> Outcome:
    """Run ``case`` through the real command and assert its outcome (module docstring)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    source = case.make(inputs)
    out_dir = inputs if case.relative else tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    out = source if case.output == source.name else out_dir / case.output
    if case.output.endswith(".exists"):
        out = out_dir / "exists.mp4"
        out.write_bytes(b"keep me")
    before = sha256(source) if source.is_file() else None
    kept = out.read_bytes() if out.is_file() else None
    args = [models.get(a, out if a == "OUTPUT" else a) for a in case.args]
    if "--model" not in args:
        args += ["--model", str(models["GOOD_MODEL"])]
    env = {**os.environ, **case.env}
    paths = [source.name, out.name] if case.relative else [str(source), str(out)]
    cmd = [
        *FILMCOLOR,
        "restore",
        *map(str, args),
        "--preset",
        "ultrafast",
        *(["-q"] if case.quiet else []),
    ]
    cmd += ["--", *paths]
    started = time.monotonic()
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=source.parent
    )
    assert time.monotonic() - started < timeout
    stderr = done.stderr
    assert done.returncode == case.code, f"exit {done.returncode}, expected {case.code}: {stderr}"
    assert "Traceback" not in stderr + done.stdout, stderr
    if before is not None:
        assert sha256(source) == before, "the input was changed"
    leftovers = [
        p.name for folder in (inputs, out_dir) for p in folder.rglob("*") if "filmcolor-" in p.name
    ]
    assert not leftovers, leftovers
    assert not _ffmpeg_processes(str(tmp_path)), "an ffmpeg process was left running"
    if case.code == OK:
        assert out.is_file(), stderr
        info = ffprobe_json(out)
        assert any(s["codec_type"] == "video" for s in info["streams"])
        expected = case.frames if case.frames is not None else decoded_frames(source)
        assert decoded_frames(out) == expected
        length = float(info["format"]["duration"])
        check = f"complete: {expected} frames, {length:.2f} s"
        if case.duration:
            source_duration = float(ffprobe_json(source)["format"]["duration"])
            assert abs(length - source_duration) < 0.15
            check += " (as the input)"
        if case.needle:
            assert case.needle in stderr, stderr
    else:
        _one_line(stderr)
        assert case.needle in stderr, stderr
        if case.names_file:
            assert source.name in stderr, stderr
        if kept is not None:
            assert out.read_bytes() == kept, "an existing output was touched"
            check = "existing output untouched"
        elif out != source:
            assert not out.exists(), "a failed run left an output"
            check = "no output"
        else:
            check = "input untouched"
    return Outcome(
        source, out, stderr, done.returncode, check + ", input unchanged, nothing left behind"
    )


def make_models(folder: Path) -> dict[str, Path]:
    """The models the cases name: a good one, a NaN one, a damaged file, a wrong contract."""
    from onnx_models import make_affine_model

    from filmcolor.model.contract import ModelContract

    bad = folder / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 100)
    return {
        "GOOD_MODEL": make_affine_model(folder / "good.onnx"),
        "NAN_MODEL": make_affine_model(folder / "nan.onnx", cb=(0.0, float("nan"))),
        "BAD_MODEL": bad,
        "WRONG_MODEL": make_affine_model(
            folder / "wrong.onnx", out_channels=1, contract=ModelContract()
        ),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_models(tmp_path_factory.mktemp("corpus_models"))


def test_the_corpus_is_large_enough():
    assert len(CORPUS) + len(EXTRA_CASES) >= 30


@pytest.mark.parametrize("name", list(CORPUS))
def test_restore_corpus(name: str, tmp_path: Path, models: dict[str, Path]):
    case = CORPUS[name]
    outcome = run_case(case, tmp_path, models)
    source, out = outcome.source, outcome.out
    if name == "two audio tracks and subtitles (mkv)":
        kinds = [s["codec_type"] for s in ffprobe_json(out)["streams"]]
        assert kinds == ["video", "audio", "audio", "subtitle"]
        for index in (1, 2):
            assert md5_of_stream(out, f"0:{index}") == md5_of_stream(source, f"0:{index}")
    if name == "anamorphic sample aspect ratio":
        assert ffprobe_json(out)["streams"][0]["sample_aspect_ratio"] == "4:3"
    if name.startswith("sample aspect ratio with large terms"):
        assert ffprobe_json(source)["streams"][0]["sample_aspect_ratio"] == "1001:1000"
        assert ffprobe_json(out)["streams"][0]["sample_aspect_ratio"] == "1001:1000"


# --- disks, permissions and signals (cases that need a mount or a running process) -----------

EXTRA_CASES = [
    "read-only output folder",
    "full disk",
    "SIGINT mid-run",
    "SIGTERM mid-run",
    "SIGHUP mid-run",
    "kill -9 then --resume",
    "very long film streamed (memory flat)",
    "extract: bad files among good",
    "two restores to one output",
    "extract: no film at all",
    "train: a run folder with a checkpoint",
]


def _mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def mounted(tmp_path: Path):
    made: list[Path] = []

    def mount(name: str, options: str) -> Path:
        folder = tmp_path / name
        if os.geteuid() != 0 or not _mount_tmpfs(folder, options):
            pytest.skip("needs root with mount rights (a small tmpfs)")
        made.append(folder)
        return folder

    yield mount
    for folder in made:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_read_only_output_folder(tmp_path: Path, models: dict[str, Path], mounted):
    folder = mounted("readonly", "ro,size=1m")
    source = make_clip(tmp_path / "a.mp4", seconds=1.0)
    before = sha256(source)
    done = subprocess.run(
        [
            *FILMCOLOR,
            "restore",
            str(source),
            str(folder / "out.mp4"),
            "--model",
            str(models["GOOD_MODEL"]),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        done.returncode == WRITE
        and "writable" in done.stderr
        and len(done.stderr.strip().splitlines()) == 1
    )
    assert sha256(source) == before and not list(folder.iterdir())


def test_full_disk(tmp_path: Path, models: dict[str, Path], mounted):
    folder = mounted("small", "size=300k")
    source = make_clip(tmp_path / "big.mp4", seconds=4.0, size="320x240", gray=False)
    before = sha256(source)
    done = subprocess.run(
        [
            *FILMCOLOR,
            "restore",
            str(source),
            str(folder / "out.mp4"),
            "--model",
            str(models["GOOD_MODEL"]),
            "--crf",
            "0",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == WRITE, done.stderr
    assert "no space left" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert sha256(source) == before
    assert not list(folder.iterdir()), "nothing half-written is left on the full disk"
    assert not _ffmpeg_processes(str(tmp_path))


def test_long_film_streams_with_flat_memory(tmp_path: Path, models: dict[str, Path]):
    """Peak memory of restore (and its ffmpeg children) for 8 s and for 64 s of film."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    peaks = []
    for seconds in (8, 64):
        source = make_clip(
            tmp_path / f"long{seconds}.mp4", seconds=seconds, size="320x240", audio=False
        )
        out = tmp_path / f"out{seconds}.mp4"
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                probe,
                *FILMCOLOR,
                "restore",
                str(source),
                str(out),
                "--model",
                str(models["GOOD_MODEL"]),
                "--preset",
                "ultrafast",
                "--segment-seconds",
                "10",
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        peaks.append(int(done.stdout.strip()))
        assert decoded_frames(out) == seconds * 25
    assert peaks[1] <= peaks[0] * 1.1, f"peak memory grew with the film: {peaks} kB"


def test_extract_reports_bad_files_and_goes_on(tmp_path: Path):
    films = tmp_path / "films"
    films.mkdir()
    make_clip(films / "good.mp4", seconds=2.0, size="160x96", gray=True, audio=False)
    (films / "empty.mp4").write_bytes(b"")
    (films / "random.mkv").write_bytes(np.random.default_rng(1).bytes(4096))
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(films / "audio.m4a"))
    hashes = {p.name: sha256(p) for p in films.iterdir()}
    done = subprocess.run(
        [
            *FILMCOLOR,
            "extract",
            str(films),
            "--out",
            str(tmp_path / "data"),
            "--per-shot",
            "2",
            "--every",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in ("empty.mp4", "random.mkv"):
        assert name in done.stderr
    assert {p.name: sha256(p) for p in films.iterdir()} == hashes
    assert not [
        p for p in (tmp_path / "data").rglob("*") if "staging" in p.name or "part" in p.name
    ]
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "empty.mp4").write_bytes(b"")
    done = subprocess.run(
        [*FILMCOLOR, "extract", str(nothing), "--out", str(tmp_path / "data2"), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_two_restores_to_one_output(tmp_path: Path, models: dict[str, Path]):
    """The second run stops at once naming the first one's pid; the first publishes the whole
    film."""
    source = make_clip(tmp_path / "long.mp4", seconds=12, size="320x240")
    out = tmp_path / "c" / "o.mp4"
    out.parent.mkdir()
    cmd = [
        *FILMCOLOR,
        "restore",
        str(source),
        str(out),
        "--model",
        str(models["GOOD_MODEL"]),
        "--segment-seconds",
        "2",
        "--preset",
        "veryslow",
        "-q",
    ]
    first = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    job = out.parent / ".o.filmcolor-work" / "job.json"
    deadline = time.time() + 60
    while not job.is_file() and time.time() < deadline:
        time.sleep(0.05)
    assert job.is_file(), "the first restore did not start"
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == USAGE
    assert f"is being written by pid {first.pid}" in _one_line(second.stderr)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert decoded_frames(out) == 300
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.mp4"], (
        "no lock, work folder or temporary file left"
    )


def test_extract_without_any_film_says_so_in_one_line(tmp_path: Path):
    """Without -q too (the progress bar of an unknown total once raised a TypeError)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "random.mkv").write_bytes(np.random.default_rng(1).bytes(4096))
    audio = tmp_path / "song.m4a"
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio))
    taken = tmp_path / "taken.txt"
    taken.write_text("a file, not a folder\n")
    for inputs, out, code, needle in (
        ([empty], tmp_path / "d1", USAGE, "no video files found"),
        ([bad], tmp_path / "d2", READ, "no film could be extracted"),
        ([audio], tmp_path / "d3", READ, "no video stream"),
        ([audio], taken, USAGE, "is a file; give --out a folder"),
        ([audio, "--every", "nan"], tmp_path / "d4", USAGE, "--every must be a finite number"),
    ):
        done = subprocess.run(
            [*FILMCOLOR, "extract", *map(str, inputs), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == code, done.stderr
        assert needle in done.stderr.splitlines()[-1], done.stderr
        assert "Traceback" not in done.stderr
    assert taken.read_text() == "a file, not a folder\n"
