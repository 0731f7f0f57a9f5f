"""restore/shots.py: a frame per shot, gray and coloured, and a contact sheet in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_scenes import make_film

from filmcolor.cli import main
from filmcolor.color import luma_from_plane, merge_rgb
from filmcolor.config import ShotsConfig
from filmcolor.errors import UsageError
from filmcolor.io.probe import probe
from filmcolor.io.reader import FrameReader, luma_pixel_format
from filmcolor.restore.shots import references_in, timecode, write_shots


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three gray shots of 40 frames (cuts at 40 and 80), the first fading in."""
    return make_film(tmp_path_factory.mktemp("shots") / "three.mp4", gray=True, fade=True)


def test_one_frame_per_shot_away_from_cuts_and_fades(film: Path, tmp_path: Path):
    out = tmp_path / "shots"
    shots = write_shots(film, out, ShotsConfig())
    assert [(s.start, s.end) for s in shots] == [(0, 40), (40, 80), (80, 120)]
    for shot in shots:
        assert shot.start + 6 <= shot.frame < shot.end - 6, shot
        assert (
            shot.gray
            == f"shot{shot.index + 1:04d}_f{shot.frame:06d}_{timecode(shot.time)}_gray.png"
        )
        gray = cv2.imread(str(out / shot.gray))
        colour = cv2.imread(str(out / shot.colour))
        assert gray.shape == colour.shape == (240, 320, 3)
        assert np.abs(gray[..., 0].astype(int) - gray[..., 2]).max() <= 1, "gray is gray"
        assert np.abs(colour[..., 0].astype(int) - colour[..., 2]).mean() > 1, "the model colours"
        # the same luminance in both
        luma = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(int) for x in (gray, colour)]
        assert np.abs(luma[0] - luma[1]).mean() < 2.5
    assert shots[0].frame >= 12, "not a frame of the fade-in"
    with FrameReader(probe(film), pix_fmt="rgb24") as reader:
        frames = [f.copy() for f in reader]
    for shot in shots[:2]:  # the picture is that very frame of the film (the third is still)
        gray = cv2.imread(str(out / shot.gray), cv2.IMREAD_GRAYSCALE).astype(int)
        own = cv2.cvtColor(frames[shot.frame], cv2.COLOR_RGB2GRAY).astype(int)
        neighbour = cv2.cvtColor(frames[shot.frame + 1], cv2.COLOR_RGB2GRAY).astype(int)
        assert np.abs(gray - own).mean() < 1.0 < np.abs(gray - neighbour).mean(), shot.frame
    info = probe(film)
    with FrameReader(info, pix_fmt=luma_pixel_format(info), luma_only=True) as reader:
        planes = [y.copy() for y in reader]
    for shot in shots:  # exactly the luminance restore reads (the Y plane), as a picture
        gray = cv2.imread(str(out / shot.gray), cv2.IMREAD_GRAYSCALE)
        luma = luma_from_plane(planes[shot.frame], info.full_range)
        expected = merge_rgb(luma, np.zeros((2, *luma.shape), np.float32))[..., 0]
        assert np.array_equal(gray, expected), shot.frame
    manifest = json.loads((out / "shots.json").read_text())
    assert manifest["film"] == "three.mp4" and len(manifest["shots"]) == 3
    assert references_in(out) == {}
    assert timecode(3725.5) == "01-02-05.500"


def test_an_edited_colour_picture_is_a_reference_and_survives_a_rerun(film: Path, tmp_path: Path):
    out = tmp_path / "shots"
    shots = write_shots(film, out, ShotsConfig())
    edited = out / shots[1].colour
    picture = cv2.imread(str(edited))
    picture[..., 2] = 255  # the colourist paints it red
    cv2.imwrite(str(edited), picture)
    assert references_in(out) == {1: edited}
    write_shots(film, out, ShotsConfig())  # refresh: the edit is kept
    assert references_in(out) == {1: edited}
    assert (cv2.imread(str(edited))[..., 2] == 255).all()
    page = (out / "index.html").read_text()
    assert page.count('data-reference="yes"') == 1 and page.count('data-reference="no"') == 2
    write_shots(film, out, ShotsConfig(overwrite=True))
    assert references_in(out) == {}


def test_another_films_folder_is_refused(film: Path, tmp_path: Path):
    out = tmp_path / "shots"
    write_shots(film, out, ShotsConfig())
    other = tmp_path / "other.mp4"
    shutil.copy(film, other)
    with pytest.raises(UsageError, match="holds the shots of 'three.mp4'"):
        write_shots(other, out, ShotsConfig())
    (tmp_path / "file").write_text("x")
    done = CliRunner().invoke(main, ["shots", str(film), "--out", str(tmp_path / "file")])
    assert done.exit_code != 0 and "is a file" in done.output


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_the_contact_sheet_in_headless_chromium(film: Path, tmp_path: Path):
    out = tmp_path / "shots"
    done = CliRunner().invoke(main, ["shots", str(film), "--out", str(out), "-q"])
    assert done.exit_code == 0, done.output
    browser = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    page = (out / "index.html").resolve().as_uri()
    proc = subprocess.Popen(
        [*browser, "--dump-dom", page], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        dom, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    text = dom.decode()
    assert text.count('class="shot"') == 3 and "3 shots, 0 with a reference" in text
    shot = tmp_path / "page.png"
    proc = subprocess.Popen(
        [*browser, f"--screenshot={shot}", "--window-size=1400,1000", page],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    screenshot = cv2.imread(str(shot))
    assert screenshot is not None and screenshot.shape[:2] == (1000, 1400)
    # the thumbnails are drawn (three of 640x240 on a 1400x1000 page): not only the dark
    # background (#222) and text
    assert (screenshot.max(axis=2) > 80).mean() > 0.2
