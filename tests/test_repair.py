"""restore/repair.py: flicker, dust and scratches out, the picture and the film's own light kept."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import decoded_frames, make_clip, md5_of_stream, read_planes

from filmcolor.cli import main
from filmcolor.config import DEFAULT_REPAIRS, REPAIRS, RepairConfig, parse_repairs
from filmcolor.errors import UsageError
from filmcolor.evaluate.damage import Damage, damage_clip, flicker
from filmcolor.restore.repair import Repairer, scratch_columns


def _scene(count: int, size: tuple[int, int] = (120, 160), seed: int = 0) -> list[np.ndarray]:
    """A textured picture panning slowly right (a smooth random field), uint8 frames."""
    rng = np.random.default_rng(seed)
    h, w = size
    field = cv2.resize(rng.uniform(40, 210, (h // 8, (w + 4 * count) // 8)), (w + 4 * count, h))
    field = cv2.GaussianBlur(field, (0, 0), 2.0)
    return [np.clip(field[:, i : i + w] + 0.5, 0, 255).astype(np.uint8) for i in range(count)]


def _repair(frames: list[np.ndarray], *steps: str) -> tuple[list[np.ndarray], Repairer]:
    repairer = Repairer(RepairConfig(steps=steps))
    out = []
    for y in frames:
        out += repairer.push(y)
    out += repairer.finish()
    assert len(out) == len(frames), "one frame out for each in"
    return out, repairer


def test_a_one_frame_speck_is_removed_and_a_moving_object_of_its_size_kept():
    clean = _scene(9)
    worn = [f.copy() for f in clean]
    cv2.circle(worn[4], (60, 50), 3, 250, -1)  # dust: frame 4 only
    moving = [f.copy() for f in worn]
    for i, f in enumerate(moving):  # a dark ball of the same size, moving on its own
        cv2.circle(f, (40 + 3 * i, 90), 3, 10, -1)
    out, repairer = _repair(moving, "dust")
    spot = np.s_[46:55, 56:65]
    assert np.abs(out[4][spot].astype(int) - clean[4][spot]).max() < 25, "the speck is gone"
    assert np.abs(moving[4][spot].astype(int) - clean[4][spot]).max() > 100
    for i in range(9):
        ball = np.s_[86:95, 36 + 3 * i : 45 + 3 * i]
        assert np.array_equal(out[i][ball], moving[i][ball]), f"the ball of frame {i} is picture"
    assert repairer.spots > 0


def test_flicker_is_steadied_and_a_fade_kept():
    clean = _scene(30)
    rng = np.random.default_rng(1)
    fade = [
        np.clip(f.astype(np.float32) * (1 - 0.025 * i), 0, 255).astype(np.uint8)
        for i, f in enumerate(clean)
    ]  # a real fade to 27 % over 30 frames
    worn = [
        np.clip(f.astype(np.float32) * (1 + rng.normal(0, 0.08)), 0, 255).astype(np.uint8)
        for f in fade
    ]
    out, _ = _repair(worn, "deflicker")
    assert flicker(worn) > 4 * flicker(out)
    means = [float(f.mean()) for f in out]
    truth = [float(f.mean()) for f in fade]
    assert np.abs(np.subtract(means, truth)).max() < 0.06 * truth[0], "the fade is the film's"
    assert means[-1] < 0.4 * means[0]


def test_a_flash_is_the_films_own():
    clean = _scene(20)
    flash = [f.copy() for f in clean]
    for i in (9, 10, 11):  # a blast: three frames far brighter
        flash[i] = np.clip(flash[i].astype(np.float32) * 2.2 + 20, 0, 255).astype(np.uint8)
    out, _ = _repair(flash, "deflicker")
    for i in (9, 10, 11):
        assert np.array_equal(out[i], flash[i])


def test_a_scratch_at_a_steady_column_is_filled():
    clean = _scene(7)
    worn = [f.copy() for f in clean]
    for i, f in enumerate(worn):
        f[:, 90 + (i % 2)] = np.clip(f[:, 90 + (i % 2)].astype(int) + 70, 0, 255)
    assert scratch_columns(worn[3])[0][0] in (90, 91)
    out, repairer = _repair(worn, "scratches")
    for i in range(1, 6):
        column = 90 + (i % 2)
        assert np.abs(out[i][:, column].astype(int) - clean[i][:, column]).mean() < 8
    assert repairer.scratch_columns >= 5
    assert scratch_columns(clean[3]) == [], "the picture has no scratch"


def test_no_brightness_crosses_a_cut():
    dark = [np.clip(f // 3, 0, 255) for f in _scene(10, seed=2)]
    bright = [np.clip(f.astype(int) + 40, 0, 255).astype(np.uint8) for f in _scene(10, seed=3)]
    out, repairer = _repair(dark + bright, *DEFAULT_REPAIRS)
    assert repairer.cuts == [10]
    for i, f in enumerate(dark + bright):
        assert abs(float(out[i].mean()) - float(f.mean())) < 2.0, i


def test_clean_footage_is_left_nearly_alone():
    clean = _scene(12)
    out, _ = _repair(clean, *DEFAULT_REPAIRS)
    mse = np.mean([(a.astype(np.float32) - b) ** 2 for a, b in zip(out, clean, strict=True)])
    assert 10 * np.log10(255**2 / max(mse, 1e-9)) >= 40


def test_damage_model_and_repair_on_it():
    clean = _scene(16, (144, 256))
    worn = damage_clip(clean, np.random.default_rng(0), Damage(weave=0.0))
    assert len(worn) == 16 and worn[0].dtype == np.uint8

    def psnr(frames: list[np.ndarray]) -> float:
        mse = np.mean([(a.astype(np.float32) - b) ** 2 for a, b in zip(frames, clean, strict=True)])
        return float(10 * np.log10(255**2 / mse))

    out, _ = _repair(worn, *DEFAULT_REPAIRS)
    assert psnr(out) > psnr(worn) + 2.0
    assert flicker(out) < 0.5 * flicker(worn)


def test_too_short_for_temporal_repairs(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO):
        out, _ = _repair(_scene(2), *DEFAULT_REPAIRS)
    assert len(out) == 2
    assert sum("too few" in r.getMessage() for r in caplog.records) == 1


def test_names():
    assert parse_repairs(None) == () and parse_repairs("") == DEFAULT_REPAIRS
    assert parse_repairs("all") == REPAIRS
    assert RepairConfig(steps=parse_repairs("dust, deflicker")).steps == ("deflicker", "dust")
    with pytest.raises(UsageError, match="unknown repair 'flux'; choose from deflicker"):
        RepairConfig(steps=parse_repairs("dust,flux"))
    assert not RepairConfig().enabled


def test_restore_and_repair_commands(tmp_path: Path):
    clip = make_clip(
        tmp_path / "worn.mp4", seconds=2.0, size="160x96", filters="noise=c0s=20:c0f=t"
    )
    runner = CliRunner()
    out = tmp_path / "out.mp4"
    done = runner.invoke(main, ["restore", str(clip), str(out), "--repair", "-q"])
    assert done.exit_code == 0, done.output
    assert decoded_frames(out) == 50 and md5_of_stream(out) == md5_of_stream(clip)
    repaired = tmp_path / "repaired.mp4"
    done = runner.invoke(main, ["repair", str(clip), str(repaired), "-q"])
    assert done.exit_code == 0, done.output
    assert decoded_frames(repaired) == 50 and md5_of_stream(repaired) == md5_of_stream(clip)
    done = runner.invoke(main, ["restore", str(clip), str(tmp_path / "x.mp4"), "--repair", "flux"])
    assert done.exit_code == 2 and "unknown --repair 'flux'" in done.output
    colour = make_clip(tmp_path / "colour.mp4", seconds=1.0, gray=False, audio=False)
    done = runner.invoke(main, ["repair", str(colour), str(tmp_path / "c.mp4")])
    assert done.exit_code != 0 and "is a colour film" in done.output
    assert not (tmp_path / "c.mp4").exists()


def _offset(frame: np.ndarray, reference: np.ndarray) -> float:
    """How far ``frame`` sits from ``reference`` (pixels, by phase correlation)."""
    (dx, dy), _ = cv2.phaseCorrelate(reference.astype(np.float32), frame.astype(np.float32))
    return float(np.hypot(dx, dy))


def test_gate_weave_is_taken_out_of_a_steady_shot_and_a_pan_is_kept():
    still = _scene(1, size=(720, 960))[0]
    shot = [still.copy() for _ in range(40)]
    worn = damage_clip(
        shot, np.random.default_rng(3), Damage(flicker=0, grain=0, dust=0, scratches=0, weave=1.2)
    )
    steady, _ = _repair(worn, "stabilize")
    before = np.mean([_offset(f, still) for f in worn[8:-8]])
    after = np.mean([_offset(f, still) for f in steady[8:-8]])
    assert before > 0.5 and after < 0.5 * before, (before, after)
    # A camera's steady pan (3 pixels a frame) is the film's: the picture follows it still, to
    # the shot's first and last frames.
    wide = _scene(1, size=(240, 440))[0]
    pan = [np.ascontiguousarray(wide[:, 3 * i : 3 * i + 320]) for i in range(40)]
    moved, _ = _repair(pan, "stabilize")
    assert all(np.array_equal(a, b) for a, b in zip(moved, pan, strict=True))


def test_repaired_frames_on_a_thread_are_the_repairers_own():
    """Restore's repair thread (RepairedFrames read by Prefetch) gives the frames, in order and
    one for one, that the repairer gives pushed in the caller's thread; its error reaches the
    reader."""
    from filmcolor.io.reader import Prefetch
    from filmcolor.restore.repair import RepairedFrames

    frames = _scene(30)
    for f in frames[::7]:
        cv2.circle(f, (60, 50), 3, 250, -1)
    expected, _ = _repair(frames, *DEFAULT_REPAIRS)
    ahead = Prefetch(RepairedFrames(Repairer(RepairConfig(steps=DEFAULT_REPAIRS)), iter(frames)), 4)
    try:
        got = list(ahead)
    finally:
        ahead.close()
    assert len(got) == len(frames)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))

    def broken():
        yield frames[0]
        raise OSError("the reader failed")

    ahead = Prefetch(RepairedFrames(Repairer(RepairConfig(steps=DEFAULT_REPAIRS)), broken()), 4)
    try:
        with pytest.raises(OSError, match="the reader failed"):
            list(ahead)
    finally:
        ahead.close()


def test_a_large_frames_neighbour_sampled_where_needed_is_the_whole_warp():
    """At 480 lines and more, a neighbour brought along the flow is made only where a step
    needs it (half size for the dust search, a grid for the grain, a few pixels to fill): each
    is what the whole-frame warp gives there."""
    from filmcolor.restore.repair import _Frame, _Warp

    a, b = _scene(2, size=(480, 640))
    rng = np.random.default_rng(5)
    flow = np.dstack(
        [cv2.resize(rng.uniform(-3, 3, (9, 16)), (320, 240)) for _ in range(2)]
    ).astype(np.float32)
    grid_x, grid_y = np.meshgrid(np.arange(320, dtype=np.float32), np.arange(240, dtype=np.float32))
    source = _Frame(1, b, np.zeros((1, 1), np.float32), None, 0, 100.0, 10.0)
    source.half = cv2.resize(b, (320, 240), interpolation=cv2.INTER_AREA)
    warp = _Warp(source, (grid_x + flow[..., 0], grid_y + flow[..., 1]), a.shape)
    full = warp.full().astype(int)
    rows, columns = rng.integers(0, 480, 500), rng.integers(0, 640, 500)
    assert np.abs(warp.at(rows, columns).astype(int) - full[rows, columns]).max() <= 1
    assert np.abs(warp.grid(3).astype(int) - full[::3, ::3]).max() <= 1
    shrunk = cv2.resize(warp.full(), (320, 240), interpolation=cv2.INTER_AREA).astype(int)
    off = np.abs(warp.half().astype(int) - shrunk)[2:-2, 2:-2]
    assert off.mean() < 0.5 and np.percentile(off, 99.9) <= 2, (off.mean(), off.max())


def test_dust_is_found_at_half_size_on_a_large_frame():
    clean = _scene(7, size=(480, 640))
    worn = [f.copy() for f in clean]
    cv2.circle(worn[3], (300, 200), 4, 250, -1)
    out, repairer = _repair(worn, "dust")
    spot = np.s_[194:207, 294:307]
    assert np.abs(out[3][spot].astype(int) - clean[3][spot]).max() < 25, "the speck is gone"
    assert repairer.specks >= 1
    assert all(np.array_equal(out[i], worn[i]) for i in (0, 1, 2, 4, 5, 6)), "no speck there"


def test_repair_in_segments_in_parallel_gives_the_same_film(tmp_path: Path, affine_model: Path):
    """restore --repair starts its repair afresh at every segment, as the colour stage does: the
    film's segments in worker processes (--jobs 2) are the one-process film, to the bit."""
    clip = make_clip(
        tmp_path / "worn.mp4", seconds=4.0, size="160x96", filters="noise=c0s=20:c0f=t"
    )
    common = ["--model", str(affine_model), "--segment-seconds", "1", "--preset", "ultrafast"]
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    for out, jobs in ((one, "1"), (two, "2")):
        done = subprocess.run(
            [sys.executable, "-m", "filmcolor.cli", "restore", str(clip), str(out), "--repair",
             "-q", "--jobs", jobs, *common],
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert decoded_frames(two) == decoded_frames(clip) == 100
    assert md5_of_stream(two) == md5_of_stream(clip), "audio bit-exact"
    one_planes, two_planes = read_planes(one), read_planes(two)
    assert np.array_equal(one_planes, two_planes)
    original = read_planes(clip)
    assert not np.array_equal(one_planes[:, 0], original[:, 0]), "the luminance was repaired"
