"""temporal.py: colour carried along known motion, reset at cuts, occlusion, bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_clip, read_planes
from onnx_models import make_affine_model
from test_scenes import make_film

from filmcolor.cli import main
from filmcolor.color import fit_gamut
from filmcolor.config import RestoreConfig, TemporalConfig
from filmcolor.errors import UsageError
from filmcolor.restore.stages import COLOR_STAGES, make_color_stage
from filmcolor.restore.temporal import (
    FlowBlender,
    OpticalFlow,
    PerFrameColor,
    trust,
    warp,
)

H, W = 72, 128


def texture(seed: int, height: int, width: int, level: float = 0.0) -> np.ndarray:
    """Smooth random luminance in [-1, 1] (something optical flow can follow)."""
    rng = np.random.default_rng(seed)
    import cv2

    noise = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), 2.0)
    noise = noise / max(1e-6, float(np.abs(noise).max())) * 0.6
    return np.clip(noise + level, -1, 1).astype(np.float32)


class LookupModel:
    """A 'model' that returns prepared chroma for each luminance frame it is given."""

    def __init__(self) -> None:
        self.table: dict[str, np.ndarray] = {}
        self.calls = 0

    def add(self, luma: np.ndarray, chroma: np.ndarray) -> None:
        self.table[hashlib.md5(luma.tobytes()).hexdigest()] = chroma.astype(np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += len(batch)
        return np.stack([self.table[hashlib.md5(f.tobytes()).hexdigest()] for f in batch])


def run_stage(stage, lumas) -> list[np.ndarray]:
    out = []
    for i, luma in enumerate(lumas):
        out += [(p, c) for p, c in stage.push(i, luma)]
    out += stage.finish()
    assert [p for p, _ in out] == list(range(len(lumas))), "frames come back in order, none lost"
    return [c for _, c in out]


def moving_scene(frames: int, step: int = 3, flicker: float = 0.25):
    """A textured world panned ``step`` px per frame; a coloured square painted on the world.

    Returns (lumas, true chroma, the model with flickering chroma: truth + alternating offset).
    """
    world_luma = texture(1, H, W + step * frames + 8)
    world_chroma = np.zeros((2, H, W + step * frames + 8), np.float32)
    world_chroma[:, 20:50, 40:80] = [[[0.5]], [[-0.3]]]
    model = LookupModel()
    lumas, truths = [], []
    for t in range(frames):
        x = step * t
        luma = np.ascontiguousarray(world_luma[:, x : x + W])
        truth = world_chroma[:, :, x : x + W]
        offset = flicker if t % 2 else -flicker
        model.add(luma, truth + offset)
        lumas.append(luma)
        truths.append(truth)
    return lumas, truths, model


def test_warp_follows_known_motion():
    a = texture(3, H, W + 10)
    frame0, frame1 = np.ascontiguousarray(a[:, 5 : 5 + W]), np.ascontiguousarray(a[:, 10 : 10 + W])
    to_u8 = lambda x: np.clip((x + 1) * 127.5, 0, 255).astype(np.uint8)  # noqa: E731
    flow = OpticalFlow()(to_u8(frame0), to_u8(frame1))
    inner = flow[8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(
        -5.0, abs=0.3
    )  # frame0's content sits 5 px left in frame1
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.3)
    warped = warp(frame1, flow)
    assert np.abs(warped - frame0)[8:-8, 8:-16].mean() < 0.02


def test_flicker_is_blended_away_along_the_motion():
    lumas, truths, model = moving_scene(30)
    blended = run_stage(
        FlowBlender(TemporalConfig(keyframe_interval=1), model, Fraction(25)), lumas
    )
    raw = run_stage(PerFrameColor(model), lumas)
    inner = (slice(None), slice(4, -4), slice(8, -8))
    raw_error = np.mean(
        [np.abs(r - t)[inner].mean() for r, t in zip(raw[5:-5], truths[5:-5], strict=True)]
    )
    flow_error = np.mean(
        [np.abs(b - t)[inner].mean() for b, t in zip(blended[5:-5], truths[5:-5], strict=True)]
    )
    assert raw_error == pytest.approx(0.25, abs=0.01)
    assert flow_error < 0.5 * raw_error, (flow_error, raw_error)
    # The square stays where it is: its colour is not smeared along the motion.
    for t in (5, 10):
        left, right = 40 - 3 * t, 80 - 3 * t
        assert blended[t][0, 24:46, left + 4 : right - 4].mean() > 0.4
        assert np.abs(blended[t][0, 24:46, right + 6 : right + 30]).mean() < 0.1


def test_a_wavering_hue_is_steadied_without_losing_its_strength():
    """The model's hue swings +-45 degrees from frame to frame at a steady strength of 0.4.
    The blend steadies the hue; averaging alone would shorten the colour to about 0.28
    (cos 45 x 0.4), and the strength is raised back toward 0.4 (at most 1.25x: 0.35)."""
    lumas, _, _ = moving_scene(24)
    model = LookupModel()
    for t, luma in enumerate(lumas):
        angle = np.pi / 4 if t % 2 else -np.pi / 4
        model.add(
            luma,
            np.stack(
                [np.full(luma.shape, 0.4 * np.cos(angle)), np.full(luma.shape, 0.4 * np.sin(angle))]
            ),
        )
    blended = run_stage(
        FlowBlender(TemporalConfig(keyframe_interval=1), model, Fraction(25)), lumas
    )
    inner = (slice(8, -8), slice(16, -16))
    strength = [float(np.hypot(*b)[inner].mean()) for b in blended[6:-6]]
    hue = [float(np.degrees(np.arctan2(b[1], b[0]))[inner].mean()) for b in blended[6:-6]]
    assert min(strength) > 0.32 and max(strength) <= 0.4 + 1e-3, strength
    assert max(abs(a - b) for a, b in zip(hue, hue[1:], strict=False)) < 30, (
        hue
    )  # the model's own: 90


def test_a_cut_resets_the_colour():
    model = LookupModel()
    lumas = []
    for t in range(60):
        shot = t // 30
        base = texture(10 + shot, H, W + 130, level=0.3 if shot == 0 else -0.3)
        luma = np.ascontiguousarray(base[:, 2 * t : 2 * t + W])
        model.add(luma, np.full((2, H, W), 0.6 if shot == 0 else -0.6, np.float32))
        lumas.append(luma)
    stage = FlowBlender(TemporalConfig(keyframe_interval=1), model, Fraction(25))
    out = run_stage(stage, lumas)
    assert stage.cuts == [30]
    assert np.abs(out[30] - (-0.6)).max() < 1e-3, (
        "the first frame after the cut has none of the old shot's colour"
    )
    assert np.abs(out[29] - 0.6).max() < 1e-3, (
        "the last frame before it takes nothing from the next shot"
    )


def test_occlusion_does_not_drag_colour():
    background = texture(5, H, W)
    model = LookupModel()
    lumas = []
    for t in range(16):
        luma = background.copy()
        x = 20 + 5 * t
        luma[20:44, x : x + 20] = 0.9
        chroma = np.full((2, H, W), -0.5, np.float32)
        chroma[:, 20:44, x : x + 20] = 0.5
        model.add(luma, chroma)
        lumas.append(luma)
    out = run_stage(
        FlowBlender(TemporalConfig(strength=2.0, keyframe_interval=1), model, Fraction(25)), lumas
    )
    for t in (6, 10):
        x_now, x_before = 20 + 5 * t, 20 + 5 * (t - 1)
        revealed = out[t][:, 22:42, x_before : x_now - 1]  # the object was here one frame ago
        assert revealed.mean() < -0.35, f"frame {t}: revealed background took the object's colour"
        assert out[t][:, 24:40, x_now + 3 : x_now + 17].mean() > 0.35, "the object keeps its colour"


def test_colour_carried_through_a_dark_moment_comes_back_whole():
    """Output is fitted into each frame's gamut, but the colour carried on is not: two near-black
    frames between keyframes do not drain the colour of the frames after them."""
    light = texture(7, H, W) * 0.8  # Y' within [0.26, 0.74]
    dark = np.ascontiguousarray((light + 1.0) * 0.1 - 1.0)  # the same picture, nearly black
    colour = np.empty((2, H, W), np.float32)
    colour[0], colour[1] = 0.2, 0.3  # G 0.14 below Y': fits every light pixel, no dark one
    model = LookupModel()
    for luma in (light, dark):
        model.add(luma, colour)
    lumas = [dark if t in (4, 5) else light for t in range(20)]
    stage = FlowBlender(TemporalConfig(keyframe_interval=10), model, Fraction(25), fit=fit_gamut)
    out = run_stage(stage, lumas)
    assert model.calls == 2
    assert np.abs(out[4]).mean() < 0.5 * np.abs(colour).mean(), "the dark frame shows less colour"
    for t in (6, 8):
        assert np.abs(out[t] - colour)[:, 4:-4, 4:-4].mean() < 0.01, (
            f"frame {t} lost colour after the dark frames"
        )


def test_trust_is_zero_for_pixels_from_outside_the_frame():
    img = np.full((16, 16), 100, np.uint8)
    forward = np.zeros((16, 16, 2), np.float32)
    forward[..., 0] = 6.0
    backward = -forward
    weights = trust(img, img, forward, backward)
    assert weights[:, :8].min() > 0.9 and weights[:, -5:].max() == 0.0


def test_keyframes_run_the_model_on_fewer_frames():
    lumas, truths, model = moving_scene(40, flicker=0.0)
    out = run_stage(FlowBlender(TemporalConfig(keyframe_interval=4), model, Fraction(25)), lumas)
    assert model.calls == 10
    inner = (slice(None), slice(4, -4), slice(8, -8))
    error = np.mean([np.abs(o - t)[inner].mean() for o, t in zip(out, truths, strict=True)])
    assert error < 0.05, "colour carried between keyframes lands in the right place"
    model.calls = 0
    auto = TemporalConfig(keyframe_interval=0)
    run_stage(FlowBlender(auto, model, Fraction(25)), lumas)
    assert 40 // (auto.max_interval + 1) <= model.calls < 20  # at least every max_interval + 1


def test_frames_whose_colour_cannot_be_carried_get_the_model_in_the_background():
    """Automatic keyframes: a frame that the previous one's colour cannot cover (here every
    frame: unrelated pictures) is known when it arrives, so its model run starts in the model
    thread right away instead of stalling restore's own thread when its turn comes."""
    import threading

    threads: list[str] = []

    def model(batch: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return np.zeros((len(batch), 2, *batch.shape[1:]), np.float32)

    lumas = [texture(100 + t, H, W) for t in range(24)]
    stage = FlowBlender(TemporalConfig(), model, Fraction(25), background=True)
    try:
        out = run_stage(stage, lumas)
    finally:
        stage.close()
    assert len(out) == 24 and len(threads) == 24, "every frame needs the model"
    assert all(name.startswith("filmcolor-model") for name in threads), threads


def test_memory_stays_flat_on_a_long_clip():
    frames = [texture(s, 36, 64) for s in range(8)]
    model = lambda batch: np.zeros((len(batch), 2, *batch.shape[1:]), np.float32)  # noqa: E731
    stage = FlowBlender(TemporalConfig(), model, Fraction(25))
    peaks = []
    tracemalloc.start()
    try:
        for i in range(1500):
            stage.push(i, frames[i % 8])
            assert stage.window_frames <= stage.cfg.radius + 2
            if i in (499, 1499):
                peaks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.1 + 200_000, peaks


def test_stage_choice_and_registry():
    model = lambda batch: batch[:, None].repeat(2, axis=1)  # noqa: E731
    assert isinstance(
        make_color_stage(TemporalConfig(mode="none"), model, Fraction(25)), PerFrameColor
    )
    assert isinstance(make_color_stage(TemporalConfig(), model, Fraction(25)), FlowBlender)
    assert TemporalConfig(mode="none").keyframe_interval == 1, (
        "frame by frame: the model on every frame"
    )
    with pytest.raises(UsageError, match="one of flow, none"):
        TemporalConfig(mode="sideways")
    # A new kind is one class and one registration: config and the factory accept it at once.
    from filmcolor.restore.stages import register

    class Gray(PerFrameColor):
        """A kind of its own (here: the model's colour taken away)."""

    register("gray")(
        lambda cfg, model, fps, batch, background, fit: Gray(lambda x: 0 * model(x), batch)
    )
    try:
        stage = make_color_stage(TemporalConfig(mode="gray"), model, Fraction(25))
        ((_, chroma),) = stage.push("p", np.ones((1, 8, 8), np.float32)) + stage.finish()
        assert isinstance(stage, Gray) and stage.cuts == [] and not chroma.any()
    finally:
        del COLOR_STAGES["gray"]


# --- through restore -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three gray shots (cuts at 40 and 80) of clearly different brightness."""
    return make_film(tmp_path_factory.mktemp("temporal") / "shots.mp4", gray=True)


@pytest.fixture(scope="module")
def luma_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chroma that follows brightness: differently coloured shots from a B&W film."""
    return make_affine_model(
        tmp_path_factory.mktemp("m") / "luma.onnx", cb=(0.6, 0.0), cr=(-0.6, 0.1)
    )


def test_restore_never_carries_colour_across_a_cut(shots: Path, luma_model: Path, tmp_path: Path):
    from filmcolor.restore.pipeline import restore

    flow = restore(
        shots, tmp_path / "flow.mkv", RestoreConfig(model=luma_model, preset="ultrafast")
    )
    plain_cfg = RestoreConfig(
        model=luma_model, preset="ultrafast", temporal=TemporalConfig(mode="none")
    )
    restore(shots, tmp_path / "none.mkv", plain_cfg)
    assert flow.cuts == [40, 80]
    a, b = read_planes(tmp_path / "flow.mkv"), read_planes(tmp_path / "none.mkv")
    assert len(a) == len(b) == 120
    for first in (40, 80):
        cb_before, cb_first = b[first - 1, 1].astype(float), b[first, 1].astype(float)
        assert np.abs(cb_first - cb_before).mean() > 10, "the shots differ in colour"
        diff = np.abs(a[first, 1:].astype(float) - b[first, 1:].astype(float))
        assert diff.mean() < 1.0, f"frame {first} carries colour of the shot before it"


def test_restore_gives_black_and_white_no_colour(clips: Path, affine_model: Path, tmp_path: Path):
    """The model paints one colour everywhere; what a frame cannot show (black at the end of a
    fade, carried along the flow from brighter frames) is cut, not left to the display's
    clipping."""
    from filmcolor.restore.pipeline import restore

    source = make_clip(
        clips / "fade_to_black.mp4", seconds=2.0, audio=False, filters="fade=out:st=1.0:d=0.6"
    )
    restore(source, tmp_path / "out.mkv", RestoreConfig(model=affine_model, preset="ultrafast"))
    planes = read_planes(tmp_path / "out.mkv").astype(int)
    assert len(planes) == 50
    black = planes[42:]  # after the fade: Y 16 everywhere
    assert black[:, 0].max() <= 17
    assert np.abs(black[:, 1:] - 128).max() <= 1, "black frames carry no colour"
    first = planes[0]
    mid = (first[0] > 90) & (first[0] < 150)  # mid-gray pixels can show the model's colour
    assert first[1][mid].mean() > 150 and first[2][mid].mean() > 170


def test_restore_options_reach_the_stage(shots: Path, luma_model: Path, tmp_path: Path):
    from filmcolor.restore.pipeline import restore

    cfg = RestoreConfig(
        model=luma_model, preset="ultrafast", temporal=TemporalConfig(keyframe_interval=5)
    )
    result = restore(shots, tmp_path / "key.mkv", cfg)
    assert result.frames == 120 and result.model_frames == 24
    assert result.temporal_seconds > 0
    runner = CliRunner()
    out = tmp_path / "cli.mp4"
    done = runner.invoke(
        main,
        [
            "restore",
            str(shots),
            str(out),
            "--model",
            str(luma_model),
            "--temporal",
            "none",
            "--preset",
            "ultrafast",
            "-q",
        ],
    )
    assert done.exit_code == 0, done.output
    assert read_planes(out).shape[0] == 120
    bad = runner.invoke(
        main, ["restore", str(shots), str(tmp_path / "x.mp4"), "--keyframe-interval", "often"]
    )
    assert (
        bad.exit_code == 2 and "--keyframe-interval must be 'auto' or a whole number" in bad.output
    )
    bad = runner.invoke(
        main,
        [
            "restore",
            str(shots),
            str(tmp_path / "x.mp4"),
            "--temporal",
            "none",
            "--keyframe-interval",
            "4",
        ],
    )
    assert bad.exit_code == 2 and "needs --temporal flow" in bad.output
    assert not (tmp_path / "x.mp4").exists()


def test_a_fade_keeps_colour_and_a_flash_does_not_smear():
    """A fade to dark still carries colour along the motion; a white flash frame neither takes
    the shot's colour nor lends its own to the frames after it."""
    lumas, truths, model = moving_scene(30, flicker=0.0)
    faded = []
    for t, luma in enumerate(lumas):
        gain = 1.0 - 0.02 * t  # a slow fade: brightness and contrast fall together
        faded_luma = np.ascontiguousarray((luma + 1.0) * gain - 1.0).astype(np.float32)
        model.add(faded_luma, truths[t])
        faded.append(faded_luma)
    out = run_stage(FlowBlender(TemporalConfig(keyframe_interval=4), model, Fraction(25)), faded)
    inner = (slice(None), slice(4, -4), slice(8, -8))
    error = np.mean([np.abs(o - t)[inner].mean() for o, t in zip(out, truths, strict=True)])
    assert error < 0.05, "colour carried through the fade lands in the right place"

    flash = np.full((H, W), 0.95, np.float32)
    model.add(flash, np.full((2, H, W), -0.8, np.float32))  # the flash's own (odd) colour
    sequence = lumas[:10] + [flash] + lumas[11:20]
    out = run_stage(FlowBlender(TemporalConfig(keyframe_interval=1), model, Fraction(25)), sequence)
    assert np.abs(out[10] - (-0.8)).mean() < 0.1, "the flash keeps its own colour"
    for t in (11, 12):
        assert np.abs(out[t] - truths[t])[inner].mean() < 0.05, (
            f"frame {t} took colour from the flash"
        )


def test_a_fade_in_gets_its_colour_back_with_automatic_keyframes():
    """A fade-in from near black: the model's colour of a dim frame is faint. Colour carried
    from the start of the fade would stay faint for the whole shot; automatic keyframes run the
    model again as the contrast grows, so the colour comes back."""
    picture = texture(11, H, W)
    colour = np.empty((2, H, W), np.float32)
    colour[0], colour[1] = 0.3, -0.2
    model = LookupModel()
    lumas = []
    for t in range(20):
        gain = min(1.0, 0.1 + 0.075 * t)  # full brightness from frame 12 on
        luma = np.ascontiguousarray((picture + 1.0) * gain - 1.0).astype(np.float32)
        model.add(luma, colour * gain)  # faint colour on a dim frame
        lumas.append(luma)
    out = run_stage(FlowBlender(TemporalConfig(), model, Fraction(25)), lumas)
    assert 4 <= model.calls < 16, f"the model ran on {model.calls} of 20 frames"
    for t in (13, 15):
        carried = np.abs(out[t]).mean() / np.abs(colour).mean()
        # Without the fade's keyframes: 10% (frame 0's colour, carried); each keyframe is blended
        # with the colour before it, so the colour rises toward the model's over a few keys.
        assert carried > 0.5, f"frame {t} shows {carried:.0%} of the full colour"

    # A fade-out is no reason for the model: the colour carried from the brighter frames stays.
    model.calls = 0
    out = run_stage(FlowBlender(TemporalConfig(), model, Fraction(25)), lumas[::-1][:13])
    assert model.calls == 1, f"the model ran on {model.calls} frames of a fade-out"
    assert np.abs(out[-1] - colour).mean() < 0.02, (
        "the fade-out keeps the colour of its first frame"
    )
