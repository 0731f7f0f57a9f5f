"""Restore's output, frame for frame, against checksums written before a change of the code's
layout: a refactoring must not change a single decoded frame.

The clips are a synthetic one made here (a pan over testsrc2 with a cut) and, when ../shared/data
is there, the real Chaplin clip; both restored with the shipped default model and its defaults
(temporal flow, automatic keyframes, int8 on the CPU), x264 ultrafast. The checksums are
ffmpeg's framemd5 of the decoded video. A change that is meant to change the picture (a new
model, a new temporal rule) writes them anew::

    FILMCOLOR_WRITE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import SHARED, run_ffmpeg

from filmcolor.config import RestoreConfig
from filmcolor.model.contract import default_model_path
from filmcolor.restore.pipeline import restore

GOLDEN = Path(__file__).parent / "golden_restore.json"


def _pan_with_cut(path: Path) -> Path:
    graph = (
        "testsrc2=s=320x180:r=25:d=1.6,hue=s=0[a];"
        "mandelbrot=s=320x180:r=25,trim=duration=1.6,setpts=PTS-STARTPTS,hue=s=0[b];[a][b]concat=n=2:v=1"
    )
    run_ffmpeg(
        "-filter_complex",
        graph,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def _frame_md5s(path: Path) -> list[str]:
    done = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v",
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        line.rsplit(",", 1)[1].strip()
        for line in done.stdout.splitlines()
        if line and not line.startswith("#")
    ]


def _clips(tmp_path: Path) -> dict[str, Path]:
    clips = {"pan_with_cut": _pan_with_cut(tmp_path / "pan.mp4")}
    chaplin = SHARED / "oldfilm_video" / "chaplin.mp4"
    if chaplin.is_file():
        clips["chaplin"] = chaplin
    return clips


def test_restore_is_frame_identical_to_the_recorded_checksums(tmp_path: Path):
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    found = {}
    for name, clip in _clips(tmp_path).items():
        out = tmp_path / f"{name}_color.mp4"
        restore(clip, out, RestoreConfig(device="cpu", preset="ultrafast"))
        found[name] = _frame_md5s(out)
    found["model"] = [default_model_path().name, str(default_model_path().stat().st_size)]
    if os.environ.get("FILMCOLOR_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps({**recorded, **found}, indent=1) + "\n")
        pytest.skip(f"checksums written to {GOLDEN}")
    if recorded.get("model") != found["model"]:
        pytest.skip("the shipped model changed since the checksums were written; write them anew")
    for name, md5s in found.items():
        if name == "model" or name not in recorded:
            continue
        assert len(md5s) == len(recorded[name]), (
            f"{name}: {len(md5s)} frames, recorded {len(recorded[name])}"
        )
        differ = [i for i, (a, b) in enumerate(zip(md5s, recorded[name], strict=True)) if a != b]
        assert not differ, f"{name}: frames {differ[:10]} differ from the recorded restore"
