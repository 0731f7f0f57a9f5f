"""metrics.py on synthetic cases with known answers."""

import numpy as np
import pytest

from filmcolor.evaluate.metrics import (
    PSNR_CAP,
    cdc,
    colourfulness,
    psnr,
    sequence_psnr,
    ssim,
    warp_error,
)


def _texture(seed: int = 0, size=(72, 96)) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def test_psnr_and_ssim_of_an_image_with_itself():
    image = _texture()
    assert psnr(image, image) == PSNR_CAP
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + np.random.default_rng(1).normal(0, 10, image.shape), 0, 255).astype(
        np.uint8
    )
    assert 20 < psnr(image, noisy) < 35 and ssim(image, noisy) < 0.95


def test_sequence_psnr_pools_the_error_before_the_log():
    truth = [np.full((8, 8, 3), 100, np.uint8) for _ in range(4)]
    exact_then_off = [
        truth[0].copy(),
        truth[1].copy(),
        truth[2] + 10,
        truth[3] + 10,
    ]  # MSE 0, 0, 100, 100
    assert sequence_psnr(truth, truth) == PSNR_CAP
    assert sequence_psnr(exact_then_off, truth) == pytest.approx(10 * np.log10(255**2 / 50.0))
    # The mean of per-frame PSNRs lets the two exact frames weigh 100 dB each.
    per_frame = np.mean([psnr(a, b) for a, b in zip(exact_then_off, truth, strict=True)])
    assert per_frame == pytest.approx((2 * PSNR_CAP + 2 * 10 * np.log10(255**2 / 100.0)) / 4)
    with pytest.raises(ValueError):
        sequence_psnr(truth[:2], truth)


def test_colourfulness_of_gray_is_zero():
    gray = np.repeat(_texture()[..., :1], 3, axis=2)
    assert colourfulness(gray) == 0.0
    assert colourfulness(_texture()) > 20


def test_cdc_identical_frames_is_zero_and_flicker_raises_it():
    frame = _texture()
    assert cdc([frame] * 6) == 0.0
    tinted = frame.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 60, 0, 255)
    flicker = [frame if i % 2 else tinted for i in range(6)]  # red flashes every other frame
    assert cdc(flicker) > 0.01


def test_cdc_leaves_out_pairs_across_a_cut():
    """Two steady shots of different colour: only the pairs across the cut differ."""
    frame = _texture()
    tinted = frame.copy()
    tinted[..., 2] = np.clip(tinted[..., 2].astype(int) + 80, 0, 255)
    film = [frame] * 6 + [tinted] * 6
    assert cdc(film) > 0.005
    assert cdc(film, cuts=[6]) == 0.0
    assert cdc(film, cuts=[5]) > 0.0  # a cut at the wrong frame leaves the real change in


def test_warp_error_follows_motion():
    base = _texture(2, (96, 128))
    moving = [np.roll(base, shift=2 * i, axis=1)[:, 16:112] for i in range(5)]
    steady = warp_error(moving)
    flicker = [f if i % 2 else f[..., ::-1] for i, f in enumerate(moving)]
    assert steady < 0.005
    assert warp_error(flicker, guide=moving) > 10 * steady


def test_measures_registry_gives_each_kind_of_table_its_columns():
    from filmcolor.evaluate.measures import (
        MEASURES,
        Sample,
        columns,
        measure,
        measure_all,
        truth_row,
    )

    assert columns("photos") == ["PSNR", "PSNR-seq", "SSIM", "colour", "colour/GT"]
    assert columns("bw") == ["colour", "CDC", "warp", "CDC-c", "warp-c", "Y-PSNR"]
    rng = np.random.default_rng(0)
    truth = [rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in range(4)]
    gray = [np.repeat(t.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2) for t in truth]
    row = measure_all("film", Sample(gray, truth=truth, cuts=[2]))
    assert set(row) == set(columns("film")) and row["colour"] == 0 and row["colour/GT"] == 0
    assert truth_row("film", Sample(truth, truth=truth, cuts=[2]))["colour/GT"] == 1.0
    # A new metric is one function and one registration: its column appears where it applies.
    measure("mean level", "photos", truth=lambda s: float(np.mean(s.truth)))(
        lambda s: float(np.mean(s.out))
    )
    try:
        assert columns("photos")[-1] == "mean level" and "mean level" not in columns("bw")
        assert measure_all("photos", Sample(truth, truth=truth))["mean level"] == pytest.approx(
            np.mean(truth)
        )
    finally:
        del MEASURES["mean level"]
