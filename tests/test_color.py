"""color.py: one convention for luminance and chroma, exact round trips."""

import numpy as np

from filmcolor.color import (
    CHROMA_TO_RGB,
    EXPOSURE_REF,
    chroma_to_planes,
    exposure_fade,
    fit_colour,
    fit_gamut,
    luma_from_plane,
    merge_rgb,
    planes_to_chroma,
    rgb_to_yuv,
    split_rgb,
    title_fade,
    yuv_to_rgb,
)
from filmcolor.evaluate.metrics import colourfulness


def test_round_trip_rgb_is_exact_within_rounding():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    luma, chroma = split_rgb(rgb)
    assert luma.shape == (32, 48) and chroma.shape == (2, 32, 48)
    assert np.abs(merge_rgb(luma, chroma).astype(int) - rgb).max() <= 1


def test_gray_has_zero_chroma_and_zero_colourfulness():
    gray = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 3, axis=2)
    _, chroma = split_rgb(gray)
    assert np.abs(chroma).max() < 1e-3
    assert colourfulness(gray) == 0.0


def test_colourfulness_orders_images():
    rng = np.random.default_rng(1)
    vivid = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    dull = (vivid.astype(int) // 4 + 96).astype(np.uint8)
    assert colourfulness(vivid) > colourfulness(dull) > 0


def test_limited_range_planes():
    y = np.array([[16, 235]], np.uint8)
    assert np.allclose(luma_from_plane(y, full_range=False), [[-1, 1]])
    assert np.allclose(luma_from_plane(y, full_range=True), [[16 / 255 * 2 - 1, 235 / 255 * 2 - 1]])
    chroma = np.array([[[-1.0]], [[1.0]]], np.float32)
    assert chroma_to_planes(chroma, full_range=False).ravel().tolist() == [16, 240]
    assert np.allclose(planes_to_chroma(chroma_to_planes(chroma, False), False), chroma)


def test_yuv_rgb_round_trip():
    rng = np.random.default_rng(2)
    rgb = rng.integers(30, 220, (8, 8, 3), dtype=np.uint8)
    for full in (False, True):
        back = yuv_to_rgb(rgb_to_yuv(rgb, full), full)
        assert np.abs(back.astype(int) - rgb).max() <= 3


def test_fit_gamut_keeps_colours_that_fit_and_shrinks_the_rest_keeping_hue():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (2, 30, 40, 3), dtype=np.uint8)
    luma, chroma = split_rgb(rgb)
    assert np.abs(fit_gamut(luma, chroma) - chroma).max() < 1e-5  # real colours always fit
    wild = rng.uniform(-1, 1, chroma.shape).astype(np.float32)
    fitted = fit_gamut(luma, wild)
    y = (luma + 1) / 2
    for k_cb, k_cr in CHROMA_TO_RGB:  # every channel inside [0, 1] now
        channel = y + k_cb * fitted[:, 0] + k_cr * fitted[:, 1]
        assert channel.min() > -1e-5 and channel.max() < 1 + 1e-5
    scale = np.hypot(fitted[:, 0], fitted[:, 1]) / np.hypot(wild[:, 0], wild[:, 1])
    assert scale.max() <= 1 + 1e-6 and scale.min() < 0.5  # only shrunk, some a lot
    assert np.allclose(fitted, wild * scale[:, None], atol=1e-5)  # same direction: same hue
    ends = np.array([[-1.0, 1.0]], np.float32)[None]  # black and white
    assert np.abs(fit_gamut(ends, np.full((1, 2, 1, 2), 0.3, np.float32))).max() == 0.0


def test_title_cards_and_black_frames_keep_no_colour_and_pictures_keep_theirs():
    """A card of light text on black (the text is mid-gray, where fit_gamut alone lets colour
    stay) comes out exactly gray; a normal picture keeps its colour; between, a ramp."""
    card = np.full((60, 80), -1.0, np.float32)
    card[40:43, 10:70] = 0.2  # a line of text, 3.75 % of the frame
    picture = np.linspace(-1, 1, 60 * 80, dtype=np.float32).reshape(60, 80)
    chroma = np.full((2, 60, 80), 0.2, np.float32)
    assert title_fade(card) == 0.0 and title_fade(picture) == 1.0
    assert np.abs(fit_gamut(card, chroma)).max() > 0.1  # the text alone could hold colour
    assert np.abs(fit_colour(card, chroma)).max() == 0.0
    np.testing.assert_array_equal(fit_colour(picture, chroma), fit_gamut(picture, chroma))
    # a batch: each frame on its own; a frame 90 % black keeps half its colour (the ramp)
    dim = np.full((60, 80), 0.6, np.float32)  # its light part fully lit (exposure_fade 1)
    dim[:54] = -1.0  # 90 % black
    batch = np.stack([card, picture, dim])
    np.testing.assert_allclose(title_fade(batch), [0.0, 1.0, 0.5], atol=1e-6)
    out = fit_colour(batch, np.repeat(chroma[None], 3, axis=0))
    np.testing.assert_allclose(out[2], fit_gamut(dim, chroma) * 0.5, atol=1e-6)


def test_frames_faded_toward_black_keep_colour_in_proportion_to_their_light():
    """A fade: the same picture with its light scaled by k. A fully lit picture keeps all its
    colour; dimmed until its highlights are below EXPOSURE_REF it keeps highlights / REF, so
    the colour follows the fade linearly (no step to flicker across); black keeps none."""
    y = np.linspace(0.0, 0.95, 60 * 80, dtype=np.float32).reshape(60, 80)  # light 0..1
    highlights = np.percentile(y[::2, ::2], 98)  # exposure_fade reads every second row and column
    ks = np.array([1.0, 0.8, 0.5, 0.25, 0.0], np.float32)
    fade = np.stack([k * y * 2 - 1 for k in ks])
    expected = np.minimum(1.0, ks * highlights / EXPOSURE_REF)
    assert expected[0] == 1.0 and 0.0 < expected[3] < expected[2] < 1.0
    np.testing.assert_allclose(exposure_fade(fade), expected, atol=1e-5)
    np.testing.assert_allclose(exposure_fade(fade[2]), expected[2], atol=1e-5)  # one frame
    chroma = np.full((5, 2, 60, 80), 0.05, np.float32)
    out = fit_colour(fade, chroma)
    for i in (0, 2, 3):
        np.testing.assert_allclose(out[i], fit_gamut(fade[i], chroma[i]) * expected[i], atol=1e-6)
    assert np.abs(out[4]).max() == 0.0
