"""restore/references.py: a colourist's frame carried through its shot, never across a cut."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_ffmpeg

from filmcolor.cli import main
from filmcolor.config import RestoreConfig
from filmcolor.errors import UsageError
from filmcolor.io.probe import probe
from filmcolor.io.reader import FrameReader
from filmcolor.restore.pipeline import restore

SHOT = 30  # frames of the first shot (a pan); the second (bars) follows


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A colour film of two shots (a slow pan over a smooth colourful picture, then colour
    bars), its gray copy with a sound track, and colour frames of it as pictures."""
    root = tmp_path_factory.mktemp("refs")
    rng = np.random.default_rng(0)
    field = cv2.resize(rng.uniform(30, 225, (8, 16, 3)), (640, 240), interpolation=cv2.INTER_CUBIC)
    texture = cv2.resize(rng.uniform(-40, 40, (60, 160)), (640, 240))[..., None]
    cv2.imwrite(str(root / "scene.png"), np.clip(field + texture, 0, 255).astype(np.uint8))
    colour = root / "colour.mkv"
    chains = (
        "[0:v]crop=320:240:x='t*50':y=0,format=yuv444p,setpts=PTS-STARTPTS[a];"
        "smptebars=s=320x240:r=25:d=0.8,format=yuv444p,setpts=PTS-STARTPTS[b];"
        "[a][b]concat=n=2:v=1:a=0[out]"
    )
    run_ffmpeg(
        "-loop", "1", "-framerate", "25", "-t", "1.2", "-i", str(root / "scene.png"),
        "-filter_complex", chains, "-map", "[out]", "-c:v", "libx264", "-crf", "0",
        "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(colour),
    )  # fmt: skip
    gray = root / "gray.mp4"
    run_ffmpeg(
        "-i", str(colour), "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-vf", "hue=s=0", "-c:v", "libx264", "-crf", "0", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(gray),
    )  # fmt: skip
    with FrameReader(probe(colour), pix_fmt="rgb24") as reader:
        frames = [f.copy() for f in reader]
    pictures = {}
    for k in (0, 12, SHOT + 5):
        path = root / f"frame_f{k:06d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(frames[k], cv2.COLOR_RGB2BGR))
        pictures[k] = path
    return {
        "colour": colour,
        "gray": gray,
        "root": root,
        **{f"f{k}": p for k, p in pictures.items()},
    }


def _planes(path: Path) -> list[np.ndarray]:
    """Each frame's U, V planes at 4:2:0 (uint8 (2, h/2, w/2))."""
    with FrameReader(probe(path), pix_fmt="yuv444p") as reader:
        return [
            cv2.resize(f[1:].transpose(1, 2, 0), None, fx=0.5, fy=0.5).transpose(2, 0, 1)
            for f in reader
        ]


def _restore(clips: dict, out: Path, *references: Path, **options) -> list[np.ndarray]:
    cfg = RestoreConfig(references=references, preset="ultrafast", crf=0, **options)
    restore(clips["gray"], out, cfg)
    return _planes(out)


def test_a_reference_colours_its_frame_and_its_shot_not_the_next(clips: dict, tmp_path: Path):
    truth = _planes(clips["colour"])
    plain = _restore(clips, tmp_path / "plain.mkv")
    given = _restore(clips, tmp_path / "ref.mkv", clips["f0"])

    def error(planes: list[np.ndarray], i: int) -> float:
        return float(np.abs(planes[i].astype(int) - truth[i]).mean())

    assert error(given, 0) < 2.0, "the reference's own frame has its colour"
    for i in range(1, SHOT):  # along the pan the carried colour stays close
        assert error(given, i) < 0.5 * error(plain, i), i
    assert error(given, SHOT - 1) < 8.0  # the picture coming in at the right has no reference
    for i in range(SHOT + 2, len(truth)):  # the next shot: the model's colour, untouched
        assert np.array_equal(given[i], plain[i]), f"colour crossed the cut into frame {i}"


def test_a_renamed_reference_finds_its_frame_and_a_mid_shot_one_carries_back(
    clips: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    renamed = tmp_path / "my painting.png"
    shutil.copy(clips["f12"], renamed)
    truth = _planes(clips["colour"])
    with caplog.at_level(logging.INFO, logger="filmcolor"):
        given = _restore(clips, tmp_path / "out.mkv", renamed)
    assert any("frame 12 (shot 1" in r.getMessage() for r in caplog.records)
    assert float(np.abs(given[12].astype(int) - truth[12]).mean()) < 2.0
    assert float(np.abs(given[0].astype(int) - truth[0]).mean()) < 6.0, "carried backward"


def test_jobs_and_resume_give_the_same_film(clips: dict, tmp_path: Path):
    one = _restore(clips, tmp_path / "one.mkv", clips["f0"], segment_seconds=0.4, jobs=1)
    two = _restore(clips, tmp_path / "two.mkv", clips["f0"], segment_seconds=0.4, jobs=2)
    assert len(one) == len(two) == 50
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))


def test_bad_references_are_refused_with_one_line(clips: dict, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "out.mp4"

    def run(*args: str) -> str:
        done = runner.invoke(main, ["restore", str(clips["gray"]), str(out), *args])
        assert done.exit_code != 0 and not out.exists(), done.output
        assert len(done.output.strip().splitlines()) == 1, done.output
        return done.output

    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), cv2.resize(cv2.imread(str(clips["f0"])), (400, 240)))
    assert "aspect" in run("--reference", str(wide))
    unrelated = tmp_path / "unrelated.png"
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    cv2.imwrite(str(unrelated), noise)
    assert "matches no frame" in run("--reference", str(unrelated))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    assert "cannot be read" in run("--reference", str(broken))
    recoloured = tmp_path / "recoloured.png"
    ycc = cv2.cvtColor(cv2.imread(str(clips["f0"])), cv2.COLOR_BGR2YCrCb)
    ycc[..., 1:] = 255 - ycc[..., 1:]  # the same frame's luminance, other colours
    cv2.imwrite(str(recoloured), cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR))
    message = run("--reference", str(clips["f0"]), "--reference", str(recoloured))
    assert "both frame 0" in message
    assert "--reference" in run("--reference", str(tmp_path / "missing.png"))


def test_a_gray_reference_is_left_out_and_other_files_ignored(
    clips: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    folder = tmp_path / "refs"
    folder.mkdir()
    gray = cv2.cvtColor(cv2.imread(str(clips["f0"])), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(folder / "gray.png"), gray)
    (folder / "notes.txt").write_text("shot 1 is red")
    shutil.copy(clips["f35"], folder / "second_shot.png")
    with caplog.at_level(logging.INFO, logger="filmcolor"):
        restore(
            clips["gray"],
            tmp_path / "out.mkv",
            RestoreConfig(references=(folder,), preset="ultrafast"),
        )
    messages = [r.getMessage() for r in caplog.records]
    assert any("has no colour" in m for m in messages)
    assert sum("ignored 1 file" in m for m in messages) == 1
    assert any("(shot 2" in m for m in messages), "a still shot: any of its frames"


def test_a_shots_folder_counts_only_what_was_changed(clips: dict, tmp_path: Path):
    from filmcolor.config import ShotsConfig
    from filmcolor.restore.references import collect_references
    from filmcolor.restore.shots import write_shots

    out = tmp_path / "shots"
    shots = write_shots(clips["gray"], out, ShotsConfig())
    assert collect_references([out]) == []
    painted = out / shots[0].colour
    shutil.copy(clips["f12"], painted)  # the colourist's version of that frame
    assert collect_references([out]) == [(painted, shots[0].frame)]
    with pytest.raises(UsageError, match="does not exist"):
        collect_references([tmp_path / "nothing"])


def test_a_palette_picture_tints_its_shot_and_keeps_the_luminance(clips: dict, tmp_path: Path):
    tinted = tmp_path / "red_postcard.png"
    rng = np.random.default_rng(1)
    picture = np.zeros((120, 160, 3), np.uint8)
    picture[..., 2] = rng.integers(150, 256, (120, 160))  # red (BGR)
    picture[..., 1] = rng.integers(0, 60, (120, 160))
    picture[..., 0] = rng.integers(0, 60, (120, 160))
    cv2.imwrite(str(tinted), picture)
    plain = _restore(clips, tmp_path / "plain.mkv")
    given = _restore(clips, tmp_path / "tinted.mkv", reference_palette=(f"{tinted}@1",))
    for i in (5, 20):  # shot 1: redder (V, the Cr plane, up)
        assert given[i][1].mean() > plain[i][1].mean() + 10, i
    for i in (SHOT + 5, 45):  # shot 2: untouched
        assert np.array_equal(given[i], plain[i]), i
    with (
        FrameReader(probe(tmp_path / "tinted.mkv"), pix_fmt="yuv444p") as a,
        FrameReader(probe(tmp_path / "plain.mkv"), pix_fmt="yuv444p") as b,
    ):
        assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True)), "luminance kept"
    runner = CliRunner()
    done = runner.invoke(
        main,
        [
            "restore",
            str(clips["gray"]),
            str(tmp_path / "x.mp4"),
            "--reference-palette",
            f"{tinted}@9",
        ],
    )
    assert done.exit_code != 0 and "has 2 shots, not 9" in done.output
