"""engine.py: the ONNX contract, providers and the luminance -> chroma path."""

from pathlib import Path

import numpy as np
import pytest
from onnx_models import make_affine_model

from filmcolor.color import EXPOSURE_REF
from filmcolor.errors import DeviceError, EngineError
from filmcolor.model.contract import ModelContract, default_model_path
from filmcolor.restore.colorizer import Colorizer, working_shape


def test_affine_model_gives_exact_chroma(affine_model: Path):
    engine = Colorizer(affine_model, device="cpu")
    assert engine.device == "cpu"
    y = np.full((2, 50, 70), 120, np.uint8)
    chroma = engine.chroma(y, full_range=False)
    assert chroma.shape == (2, 2, 50, 70)
    # a flat mid-gray frame is dimmer than a fully lit picture: it keeps its light's share
    k = min(1.0, (104 / 219) / EXPOSURE_REF)
    assert 0.7 < k < 0.8
    assert np.allclose(chroma[:, 0], 0.25 * k, atol=1e-5) and np.allclose(
        chroma[:, 1], 0.5 * k, atol=1e-5
    )


def test_luma_dependent_chroma_is_upsampled_in_place(tmp_path: Path):
    model = make_affine_model(tmp_path / "ramp.onnx", cb=(0.2, 0.0), cr=(0.0, 0.0))
    engine = Colorizer(model, device="cpu", working_size=32)
    y = np.full((1, 64, 128), 60, np.uint8)
    y[:, :, 64:] = 180  # right half light -> Cb = 0.2 * 0.498, left half dark -> 0.2 * -0.598
    chroma = engine.chroma(y, full_range=False)
    assert chroma[0, 0, :, :56].mean() == pytest.approx(0.2 * (2 * 44 / 219 - 1), abs=0.005)
    assert chroma[0, 0, :, 72:].mean() == pytest.approx(0.2 * (2 * 164 / 219 - 1), abs=0.005)


def test_black_and_white_get_no_colour(affine_model: Path):
    """A model's colour on a black or a white pixel would be clipped by the display: it is cut."""
    engine = Colorizer(affine_model, device="cpu")  # Cb 0.25, Cr 0.5 everywhere
    y = np.full((1, 40, 60), 16, np.uint8)
    y[:, 20:] = 235
    y[:, :, 30:] = 120
    chroma = engine.chroma(y, full_range=False)
    assert np.abs(chroma[0, :, :16, :26]).max() == 0.0  # black
    assert np.abs(chroma[0, :, 24:, :26]).max() == 0.0  # white
    mid = chroma[0, :, 4:36, 34:]
    assert np.allclose(mid[0], 0.25, atol=1e-5) and np.allclose(
        mid[1], 0.5, atol=1e-5
    )  # fits: kept


def test_colorize_rgb_keeps_luminance(affine_model: Path):
    engine = Colorizer(affine_model, device="cpu")
    gray = np.repeat(
        np.random.default_rng(0).integers(0, 256, (1, 40, 40, 1), dtype=np.uint8), 3, axis=3
    )
    out = engine.colorize(gray)
    luma = 0.299 * out[..., 0] + 0.587 * out[..., 1] + 0.114 * out[..., 2]
    inside = (gray[..., 0] > 60) & (gray[..., 0] < 150)  # where no RGB channel clips
    assert np.abs(luma - gray[..., 0])[inside].max() < 1.5
    assert (out[..., 0].astype(int) - out[..., 2]).mean() > 20  # Cr > 0: reddish


def test_working_shape():
    assert working_shape(360, 640, 256, 4) == (256, 456)
    assert working_shape(64, 96, 256, 4) == (64, 96)  # never upscaled
    assert working_shape(49, 65, 256, 4) == (48, 64)


def test_model_without_contract_is_rejected(tmp_path: Path):
    model = make_affine_model(tmp_path / "bare.onnx", with_contract=False)
    with pytest.raises(EngineError, match="no filmcolor contract"):
        Colorizer(model, device="cpu")


def test_model_with_wrong_shape_is_rejected(tmp_path: Path):
    model = make_affine_model(tmp_path / "three.onnx", out_channels=1)
    with pytest.raises(EngineError, match=r"\(N, 2, H, W\) chroma"):
        Colorizer(model, device="cpu")


def test_model_with_wrong_names_is_rejected(tmp_path: Path):
    model = make_affine_model(
        tmp_path / "names.onnx", input_name="image", contract=ModelContract(input_name="luma")
    )
    with pytest.raises(EngineError, match="does not match its contract"):
        Colorizer(model, device="cpu")


def test_corrupt_and_missing_models(tmp_path: Path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x01garbage" * 100)
    with pytest.raises(EngineError, match="cannot be loaded"):
        Colorizer(corrupt, device="cpu")
    with pytest.raises(EngineError, match="does not exist"):
        Colorizer(tmp_path / "nope.onnx", device="cpu")


def test_auto_device_without_gpu_is_cpu_and_quiet(affine_model: Path, capfd: pytest.CaptureFixture):
    engine = Colorizer(affine_model, device="auto")
    assert engine.device in ("cpu", "cuda")
    assert "libcublas" not in capfd.readouterr().err


def test_default_model_is_shipped_and_colours():
    path = default_model_path()
    if not path.is_file():
        pytest.fail(f"the default model {path} is not in the package")
    engine = Colorizer(None, device="cpu")
    assert engine.model_path == path
    ramp = np.tile(np.linspace(20, 230, 96, dtype=np.uint8), (64, 1))
    rgb = np.repeat(ramp[None, :, :, None], 3, axis=3)
    out = engine.colorize(rgb)
    from filmcolor.color import split_rgb

    _, chroma = split_rgb(out)
    assert np.abs(chroma).mean() > 0.005  # non-zero chroma


@pytest.mark.gpu
def test_cuda_device_when_a_gpu_is_present(affine_model: Path):
    from filmcolor.restore.colorizer import gpu_present

    if not gpu_present():
        with pytest.raises(DeviceError, match="use device cpu"):
            Colorizer(affine_model, device="cuda")
        pytest.skip("no GPU here: --device cuda refuses with a clear error (checked)")
    engine = Colorizer(affine_model, device="cuda")
    assert engine.device == "cuda"
    chroma = engine.chroma(np.full((2, 32, 48), 100, np.uint8), full_range=False)
    assert np.allclose(chroma[:, 1], 0.5, atol=1e-3)
