"""export.py: a checked ONNX file that matches PyTorch and that restore runs unchanged."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402
from conftest import decoded_frames, md5_of_stream  # noqa: E402
from test_train import TINY, _images  # noqa: E402

from filmcolor.cli import main  # noqa: E402
from filmcolor.config import ExportConfig, load_train_config  # noqa: E402
from filmcolor.errors import CheckpointError, ExportError, UsageError  # noqa: E402
from filmcolor.model.export import export_onnx, load_colorizer  # noqa: E402
from filmcolor.restore.colorizer import Colorizer  # noqa: E402
from filmcolor.training.loop import train  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    _images(root / "data" / "trainA", 3, True, 0)
    _images(root / "data" / "trainB", 3, False, 1)
    train(load_train_config(None, TINY), root / "data", root / "run", max_steps=2)
    return root / "run"


def test_export_parity_contract_and_checker(run: Path, tmp_path: Path):
    out = tmp_path / "g.onnx"
    report = export_onnx(run, out, ExportConfig())
    assert report.max_abs_diff <= 1e-3 and report.trained_steps == 2
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    engine = Colorizer(out, device="cpu")
    assert engine.contract.working_size == TINY["load_size"] and engine.contract.trained_steps == 2
    # Same numbers as PyTorch on another size and batch (dynamic axes).
    net, _, _ = load_colorizer(run)
    luma = np.random.default_rng(0).uniform(-1, 1, (3, 44, 60)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(luma[:, None])).numpy()
    assert np.abs(engine.run(luma) - expected).max() < 1e-4


def test_exported_model_restores_a_clip(run: Path, gray_clip: Path, tmp_path: Path):
    model = tmp_path / "g.onnx"
    runner = CliRunner()
    exported = runner.invoke(main, ["export", str(run), str(model)])
    assert exported.exit_code == 0, exported.output
    assert "parity" in exported.stderr and "max |diff|" in exported.stderr
    out = tmp_path / "out.mp4"
    restored = runner.invoke(
        main, ["restore", str(gray_clip), str(out), "--model", str(model), "-q"]
    )
    assert restored.exit_code == 0, restored.output
    assert decoded_frames(out) == 50 and md5_of_stream(out) == md5_of_stream(gray_clip)


def test_export_errors(tmp_path: Path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        export_onnx(tmp_path, tmp_path / "g.onnx", ExportConfig())
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"nope")
    with pytest.raises(CheckpointError, match="cannot be read"):
        export_onnx(broken, tmp_path / "g.onnx", ExportConfig())
    with pytest.raises(ExportError, match="opset"):
        export_onnx(broken, tmp_path / "g.onnx", ExportConfig(opset=11))
    with pytest.raises(UsageError, match="temperature -1"):
        ExportConfig(temperature=-1)
    assert not (tmp_path / "g.onnx").exists()


def test_a_regressing_head_has_no_temperature(run: Path, tmp_path: Path):
    runner = CliRunner()
    done = runner.invoke(
        main, ["export", str(run), str(tmp_path / "g.onnx"), "--temperature", "0.3"]
    )
    assert done.exit_code != 0 and "regressing head" in done.output
    assert "--temperature" in done.output and not (tmp_path / "g.onnx").exists()


def test_fp16_export(run: Path, tmp_path: Path):
    out = tmp_path / "g16.onnx"
    report = export_onnx(run, out, ExportConfig(fp16=True))
    assert report.max_abs_diff <= 2e-2
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    engine = Colorizer(out, device="cpu")
    chroma = engine.chroma(np.full((1, 32, 48), 100, np.uint8), full_range=False)
    assert chroma.dtype == np.float32 and chroma.shape == (1, 2, 32, 48)
