"""scenes.py: cuts found at known frames of synthetic films."""

from pathlib import Path

import pytest
from conftest import run_ffmpeg

from filmcolor.config import SceneConfig
from filmcolor.scenes import detect_scenes, scenes_from_cuts


def make_film(
    path: Path, *, gray: bool = False, pad: str = "", fade: bool = False, seconds: float = 1.6
) -> Path:
    """Three shots of 40 frames (25 fps) from different sources: cuts at frames 40 and 80."""
    size = "320x240"
    sources = [
        f"testsrc2=s={size}:r=25:d={seconds}",
        f"mandelbrot=s={size}:r=25,trim=duration={seconds}",
        f"smptebars=s={size}:r=25:d={seconds}",  # a still picture: its frames are duplicates
    ]
    chains = []
    for i, src in enumerate(sources):
        extra = ",fade=in:0:12" if fade and i == 0 else ""
        chains.append(f"{src},format=yuv420p,setpts=PTS-STARTPTS{extra}[v{i}]")
    tail = "".join(f"[v{i}]" for i in range(3)) + "concat=n=3:v=1:a=0"
    if gray:
        tail += ",hue=s=0"
    if pad:
        tail += f",{pad}"
    run_ffmpeg(
        "-filter_complex",
        ";".join(chains) + ";" + tail + "[out]",
        "-map",
        "[out]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "16",
        str(path),
    )
    return path


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_film(tmp_path_factory.mktemp("scenes") / "three_shots.mp4")


def test_cuts_at_known_frames(film: Path):
    scenes = detect_scenes(film, SceneConfig())
    assert [(s.start_frame, s.end_frame) for s in scenes] == [(0, 40), (40, 80), (80, 120)]
    assert scenes[1].start_time == pytest.approx(1.6)


def test_gray_film_luma_only_and_adaptive(tmp_path: Path):
    gray = make_film(tmp_path / "gray.mp4", gray=True)
    for cfg in (SceneConfig(), SceneConfig(detector="adaptive")):
        cuts = [s.start_frame for s in detect_scenes(gray, cfg, luma_only=True)]
        assert cuts == [0, 40, 80], cfg


def test_single_shot_is_one_scene(gray_clip: Path):
    scenes = detect_scenes(gray_clip, SceneConfig())
    assert [(s.start_frame, s.end_frame) for s in scenes] == [(0, 50)]


def test_scenes_from_cuts_ignores_edges_and_repeats():
    from fractions import Fraction

    scenes = scenes_from_cuts([0, 10, 10, 30, 40], 40, Fraction(25))
    assert [(s.start_frame, s.end_frame) for s in scenes] == [(0, 10), (10, 30), (30, 40)]


def test_luma_frames_score_as_their_bgr_copies():
    """A luma-only detector given gray frames finds the cuts, with the frame scores, that
    PySceneDetect gives the same frames as BGR (it skips only the HSV conversion)."""
    from fractions import Fraction

    import cv2
    import numpy as np

    from filmcolor.scenes import CutDetector

    rng = np.random.default_rng(0)
    frames = [
        rng.integers(0, 256, (108, 192), dtype=np.uint8)
        if i % 20 == 0
        else (i // 20) * 40 + rng.integers(0, 3, (108, 192), np.uint8)
        for i in range(100)
    ]
    for cfg in (SceneConfig(), SceneConfig(detector="adaptive")):
        gray, bgr = (CutDetector(cfg, Fraction(24), luma_only=True) for _ in range(2))
        cuts_gray, cuts_bgr = [], []
        for frame in frames:
            cuts_gray += gray.push_gray(frame)
            cuts_bgr += bgr.push_bgr(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
            scores = [d._detector._frame_score for d in (gray, bgr)]
            assert scores[0] == pytest.approx(scores[1], abs=1e-9), cfg
        cuts_gray += gray.finish()
        cuts_bgr += bgr.finish()
        assert cuts_gray == cuts_bgr and len(cuts_gray) >= 3, (cfg, cuts_gray)
