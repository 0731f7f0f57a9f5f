"""calibrate.py, the contract's chroma_gain and restore's --saturation."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_clip, read_planes
from onnx_models import make_affine_model

from filmcolor.cli import main
from filmcolor.config import RestoreConfig
from filmcolor.errors import EngineError, UsageError
from filmcolor.evaluate.metrics import colourfulness
from filmcolor.model.calibrate import calibrate_model, find_gain
from filmcolor.model.contract import ModelContract, default_model_path, int8_path
from filmcolor.restore.colorizer import Colorizer
from filmcolor.restore.pipeline import restore


def _photos(folder: Path, count: int = 6) -> Path:
    """Colour pictures: blocks of saturated colour on mid-gray luminance, each different."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(count):
        small = rng.integers(40, 216, (6, 8, 3), dtype=np.uint8)
        image = cv2.resize(small, (160, 120), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(folder / f"p{i}.png"), image)
    (folder / "notes.txt").write_text("not a picture")
    return folder


def test_engine_multiplies_chroma_by_contract_gain_and_saturation(tmp_path: Path):
    contract = ModelContract(chroma_gain=2.0)
    model = make_affine_model(tmp_path / "g.onnx", cb=(0.0, 0.1), cr=(0.0, -0.3), contract=contract)
    luma = np.zeros((1, 8, 8), np.float32)
    out = Colorizer(model, device="cpu").run(luma)
    assert np.allclose(out[0, 0], 0.2) and np.allclose(out[0, 1], -0.6)
    out = Colorizer(model, device="cpu", saturation=0.25).run(luma)
    assert np.allclose(out[0, 0], 0.05) and np.allclose(out[0, 1], -0.15)
    assert np.abs(Colorizer(model, device="cpu", saturation=0.0).run(luma)).max() == 0.0
    out = Colorizer(model, device="cpu", saturation=3.0).run(luma)  # 6 x 0.1, 6 x -0.3
    assert np.allclose(out[0, 0], 0.6) and np.allclose(out[0, 1], -1.0)  # kept inside [-1, 1]
    with pytest.raises(EngineError, match="saturation"):
        Colorizer(model, device="cpu", saturation=-1.0)


def test_contract_without_gain_reads_as_one_and_a_bad_gain_is_refused(tmp_path: Path):
    plain = make_affine_model(tmp_path / "plain.onnx")
    assert Colorizer(plain, device="cpu").gain == 1.0
    text = ModelContract().to_json().replace('"chroma_gain": 1.0', '"chroma_gain": -2')
    bad = make_affine_model(tmp_path / "bad.onnx", contract=_Raw(text))
    with pytest.raises(EngineError, match="chroma_gain .*filmcolor calibrate"):
        Colorizer(bad, device="cpu")


class _Raw(ModelContract):
    """A contract whose JSON is given as is (to store a broken one)."""

    def __init__(self, text: str) -> None:
        object.__setattr__(self, "text", text)

    def to_json(self) -> str:
        return self.text  # type: ignore[attr-defined]


def test_find_gain_bisects_a_monotone_ratio():
    assert find_gain(lambda g: 0.25 * g, 0.6) == pytest.approx(2.4, rel=1e-3)
    with pytest.raises(UsageError, match="cannot reach"):
        find_gain(lambda g: 0.01 * g, 0.6)


def test_calibration_reaches_the_target_and_is_written_to_both_files(tmp_path: Path):
    photos = _photos(tmp_path / "photos")
    model = make_affine_model(tmp_path / "m.onnx", cb=(0.0, 0.05), cr=(0.0, -0.04))
    shutil.copy(model, int8_path(model))  # stands in for the int8 sibling
    report = calibrate_model(model, [photos], target=0.5)
    assert report.photos == 6 and report.written == [model, int8_path(model)]
    assert report.ratio_before < 0.5 and report.ratio_after == pytest.approx(0.5, abs=0.01)
    assert report.gain > 1.0
    for path in (model, int8_path(model)):
        engine = Colorizer(path, device="cpu")
        assert engine.contract.chroma_gain == report.gain
        assert engine.contract.calibration["target"] == 0.5
    # Measured independently: the engine now colours the photos at half their colourfulness.
    pictures = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(photos.glob("*.png"))
    ]
    engine = Colorizer(model, device="cpu", precision="fp32")
    out = [engine.colorize(p[None])[0] for p in pictures]
    ratio = np.mean([colourfulness(o) for o in out]) / np.mean([colourfulness(p) for p in pictures])
    assert ratio == pytest.approx(0.5, abs=0.02)
    # Calibrating again starts from the network's own chroma, not the stored gain.
    assert calibrate_model(model, [photos], target=0.5).gain == pytest.approx(report.gain, rel=1e-3)


def test_calibrate_cli_reports_and_refuses_bad_input(tmp_path: Path):
    photos = _photos(tmp_path / "photos", count=3)
    model = make_affine_model(tmp_path / "m.onnx", cb=(0.0, 0.05), cr=(0.0, -0.04))
    result = CliRunner().invoke(
        main, ["calibrate", str(model), "--photos", str(photos), "--target", "0.4"]
    )
    assert result.exit_code == 0, result.output
    assert "chroma gain" in result.output and "0.40 of the 3 photos' own" in result.output
    result = CliRunner().invoke(main, ["calibrate", str(model), "--photos", str(tmp_path / "nope")])
    assert (
        result.exit_code == 2 and "'" + str(tmp_path / "nope") + "' do not exist" in result.output
    )
    assert "Traceback" not in result.output
    gray = make_affine_model(tmp_path / "gray.onnx", cb=(0.0, 0.0), cr=(0.0, 0.0))
    before = gray.read_bytes()
    result = CliRunner().invoke(main, ["calibrate", str(gray), "--photos", str(photos)])
    assert result.exit_code == 2 and "cannot reach 0.60" in result.output
    assert gray.read_bytes() == before  # nothing written on failure


def test_shipped_model_carries_one_calibrated_gain():
    floating = Colorizer(default_model_path(), device="cpu", precision="fp32")
    quantized = Colorizer(default_model_path(), device="cpu", precision="int8")
    assert floating.contract.chroma_gain == quantized.contract.chroma_gain
    assert (
        floating.contract.calibration is not None and floating.contract.calibration["photos"] >= 100
    )


@pytest.mark.slow
def test_restore_saturation_zero_gives_black_and_white(tmp_path: Path):
    clip = make_clip(tmp_path / "in.mp4", seconds=1.0, size="96x64", audio=False)
    model = make_affine_model(tmp_path / "m.onnx", cb=(0.0, 0.3), cr=(0.0, -0.3))
    planes = {}
    for saturation in (0.0, 1.0):
        out = tmp_path / f"s{saturation}.mp4"
        cfg = RestoreConfig(model=model, device="cpu", saturation=saturation, preset="ultrafast")
        restore(clip, out, cfg)
        planes[saturation] = read_planes(out)
    assert np.abs(planes[0.0][:, 1:].astype(int) - 128).max() <= 1  # U and V flat: gray
    assert np.abs(planes[1.0][:, 1:].astype(int) - 128).mean() > 20
    with pytest.raises(UsageError, match="saturation"):
        RestoreConfig(saturation=-0.5)
