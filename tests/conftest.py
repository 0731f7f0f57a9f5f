"""Shared fixtures: synthetic clips made with ffmpeg lavfi, real footage from ../shared/data."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from onnx_models import make_affine_model  # noqa: E402

from filmcolor.evaluate.metrics import psnr as y_psnr  # noqa: E402, F401 - the tests' name for it

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; fail the test with its stderr if it fails."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise AssertionError(f"ffmpeg {' '.join(args)} failed: {done.stderr}")


def make_clip(
    path: Path,
    *,
    seconds: float = 2.0,
    size: str = "96x64",
    rate: str = "25",
    audio: bool = True,
    gray: bool = True,
    pix_fmt: str = "yuv420p",
    extra: tuple[str, ...] = (),
    filters: str = "",
) -> Path:
    """A testsrc2 clip (grayscale by default) with an optional 440 Hz AAC track."""
    inputs = [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={rate}:duration={seconds},format=rgb24",
    ]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    chain = ",".join(f for f in ("hue=s=0" if gray else "", filters) if f)
    vf = ["-vf", chain] if chain else []
    codec = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt]
    if path.suffix == ".webm":
        codec = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-pix_fmt", pix_fmt]
    acodec = ["-c:a", "libopus" if path.suffix == ".webm" else "aac"] if audio else []
    run_ffmpeg(*inputs, *vf, *codec, *acodec, *extra, str(path))
    return path


def md5_of_stream(path: Path, selector: str = "0:a") -> str:
    """ffmpeg's md5 of the stream-copied packets (bit-exactness of audio)."""
    done = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            selector,
            "-c",
            "copy",
            "-f",
            "md5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def ffprobe_json(path: Path) -> dict:
    import json

    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-count_frames",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def video_stream(path: Path) -> dict:
    return next(s for s in ffprobe_json(path)["streams"] if s["codec_type"] == "video")


def decoded_frames(path: Path) -> int:
    return int(video_stream(path)["nb_read_frames"])


def read_planes(path: Path) -> np.ndarray:
    """All frames of a (small) video as uint8 (N, 3, H, W) planar YUV 4:4:4."""
    from filmcolor.io.probe import probe
    from filmcolor.io.reader import FrameReader

    with FrameReader(probe(path)) as reader:
        return np.stack(list(reader))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: a user's fresh clone has no shared footage."""
    if not SHARED.is_dir():
        pytest.skip(f"real footage not available ({SHARED} is absent)")
    return SHARED


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small synthetic clips shared by the tests of a session."""
    if shutil.which("ffmpeg") is None:
        pytest.fail(
            "ffmpeg is not installed: run 'make test' (it installs it) or apt-get install ffmpeg"
        )
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def gray_clip(clips: Path) -> Path:
    """2 s, 96x64, 25 fps grayscale testsrc2 with AAC audio (50 frames)."""
    return make_clip(clips / "gray.mp4")


@pytest.fixture(scope="session")
def affine_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that paints constant chroma Cb = 0.25, Cr = 0.5 on any frame."""
    return make_affine_model(tmp_path_factory.mktemp("models") / "affine.onnx")


# U and V that the affine model's chroma gives in a limited-range video.
AFFINE_U = 128 + 0.25 * 112
AFFINE_V = 128 + 0.5 * 112
