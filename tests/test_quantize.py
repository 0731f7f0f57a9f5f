"""quantize.py and --precision: int8 siblings calibrated on real frames, picked on a CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import make_clip
from onnx_models import make_affine_model

from filmcolor.cli import main
from filmcolor.errors import EngineError
from filmcolor.model.contract import default_model_path, int8_path
from filmcolor.model.quantize import quantize_model
from filmcolor.restore.colorizer import Colorizer


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("q") / "calib.mp4", seconds=2.0, size="160x96", audio=False
    )


def test_quantized_model_keeps_contract_and_output(tmp_path: Path, clip: Path):
    model = make_affine_model(tmp_path / "luma.onnx", cb=(0.5, 0.1), cr=(-0.4, 0.0))
    report = quantize_model(model, [clip], count=8)
    assert report.path == int8_path(model) == tmp_path / "luma_int8.onnx"
    assert report.calibration_frames == 8
    assert report.mean_abs_diff < 0.02 and report.max_abs_diff < 0.05
    ops = {node.op_type for node in onnx.load(str(report.path)).graph.node}
    assert "QLinearConv" in ops, ops
    engine = Colorizer(report.path, device="cpu")
    assert engine.contract == Colorizer(model, device="cpu").contract
    assert not list(tmp_path.glob(".*filmcolor-part*"))


def test_precision_picks_the_int8_sibling(tmp_path: Path, clip: Path):
    model = make_affine_model(tmp_path / "m.onnx")
    with pytest.raises(EngineError, match="filmcolor quantize"):
        Colorizer(model, device="cpu", precision="int8")
    assert (
        Colorizer(model, device="cpu", precision="auto").model_path == model
    )  # none yet: the float file
    quantize_model(model, [clip], count=4)
    assert Colorizer(model, device="cpu", precision="auto").model_path == int8_path(model)
    assert Colorizer(model, device="cpu", precision="int8").model_path == int8_path(model)
    assert Colorizer(model, device="cpu", precision="fp32").model_path == model


def test_shipped_int8_model_is_close_to_the_float_one():
    floating = Colorizer(default_model_path(), device="cpu", precision="fp32")
    quantized = Colorizer(default_model_path(), device="cpu", precision="auto")
    assert quantized.model_path.name == "default_int8.onnx"
    rng = np.random.default_rng(0)
    import cv2

    luma = cv2.GaussianBlur(rng.uniform(-1, 1, (144, 256)).astype(np.float32), (0, 0), 3) * 3
    luma = np.clip(luma, -1, 1)[None]
    a, b = floating.run(luma), quantized.run(luma)
    assert np.abs(b).mean() > 0.01, "the int8 model colours"
    assert np.abs(a - b).mean() < 0.03


def test_quantize_cli_errors(tmp_path: Path, clip: Path):
    model = make_affine_model(tmp_path / "m.onnx")
    runner = CliRunner()
    done = runner.invoke(main, ["quantize", str(model), "--footage", str(tmp_path / "nothing.mp4")])
    assert done.exit_code == 2 and "nothing.mp4" in done.output
    # several paths after one flag (as --help shows): the second is footage too, and checked
    done = runner.invoke(
        main, ["quantize", str(model), "--footage", str(clip), str(tmp_path / "other.mp4")]
    )
    assert done.exit_code == 2 and "other.mp4" in done.output
    copy = tmp_path / "copy.onnx"
    shutil.copy(model, copy)
    done = runner.invoke(
        main, ["quantize", str(copy), "--footage", str(clip), str(clip), "--frames", "4"]
    )
    assert done.exit_code == 0, done.output
    assert int8_path(copy).is_file()


def test_the_first_and_last_convolution_stay_float(tmp_path: Path, clip: Path):
    """The shipped generator: its int8 copy keeps the end convolutions float (the input's
    luminance; the output's chroma, which a binned head makes in two: the bins' scores and
    their annealed mean) and every other one integer."""
    import shutil

    from filmcolor.model.contract import default_model_path

    model = tmp_path / "g.onnx"
    shutil.copy(default_model_path(), model)
    report = quantize_model(model, [clip], count=4)
    nodes = onnx.load(str(report.path)).graph.node
    convs = [n.op_type for n in nodes if n.op_type in ("Conv", "QLinearConv")]
    tail = 2 if any(n.op_type == "Exp" for n in nodes) else 1
    assert convs[0] == "Conv" and convs[-tail:] == ["Conv"] * tail, convs
    assert set(convs[1:-tail]) == {"QLinearConv"}, convs
    assert len(convs) == sum(n.op_type == "Conv" for n in onnx.load(str(model)).graph.node)
    assert report.mean_abs_diff < 0.03


def test_a_folder_of_pictures_calibrates(tmp_path: Path):
    import cv2

    stills = tmp_path / "stills" / "reel1"
    stills.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(6):
        picture = cv2.resize(rng.integers(0, 256, (6, 8), dtype=np.uint8), (160, 120))
        cv2.imwrite(str(stills / f"{i:03d}.png"), picture)
    (stills / "notes.txt").write_text("not a picture")
    model = make_affine_model(tmp_path / "m.onnx")
    report = quantize_model(model, [tmp_path / "stills"], count=4)
    assert report.calibration_frames == 4 and report.path.is_file()
