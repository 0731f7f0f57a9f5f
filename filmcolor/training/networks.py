"""The CycleGAN networks: ResNet generators and PatchGAN discriminators. Pure torch, no I/O.

Names in the paper (Zhu et al. 2017, arXiv 1703.10593) and here:

=========  ===========================  =====================================================
paper      code                         role
=========  ===========================  =====================================================
X          domain A                     B&W frames, luminance only (1 channel)
Y          domain B                     colour frames as Y'CbCr (3 channels, see color.py)
G: X->Y    ``colorizer`` (1 -> 2 ch)    predicts chroma; the colour frame is [luma, G(luma)]
F: Y->X    ``decolorizer`` (3 -> 1 ch)  maps a colour frame to the luminance of a B&W frame
D_Y        ``critic_b`` (3 ch)          judges colour frames
D_X        ``critic_a`` (1 ch)          judges B&W frames
lambda     ``TrainConfig.lambda_cycle``  weight of both cycle-consistency losses
=========  ===========================  =====================================================

Example::

    colorizer = build_generator(GeneratorConfig.light(), "colorizer")
    chroma = colorizer(torch.zeros(1, 1, 128, 128))    # (1, 2, 128, 128) in [-1, 1]
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch import nn
from torch.nn import functional as nnf

from ..config import DiscriminatorConfig, GeneratorConfig
from .efficientnet import INPUT_LEVELS, TAP_CHANNELS, EfficientNetLite0

CHANNELS = {"colorizer": (1, 2), "decolorizer": (3, 1)}


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with instance norm, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


HEAD_POOL = 2
"""A binned head paints chroma at 1/HEAD_POOL of the working size (see ResnetGenerator.forward)."""


class ResnetGenerator(nn.Module):
    """c7s1-k, d2k..., R x blocks, u..., c7s1 -> tanh (the paper's appendix 7.2).

    Args:
        in_channels: input planes (1 for luminance, 3 for a Y'CbCr frame).
        out_channels: output planes (2 for chroma, 1 for luminance).
        cfg: filters, residual blocks and down/up-samplings.
    """

    def __init__(self, in_channels: int, out_channels: int, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.filters
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7),
            nn.InstanceNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(cfg.downsamplings):
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(cfg.blocks)]
        for _ in range(cfg.downsamplings):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        self.head: nn.Conv2d | None = None
        if cfg.bins:
            if out_channels != 2:
                raise ValueError("a binned head predicts chroma (2 channels) only")
            self.head = nn.Conv2d(width, cfg.bins**2, 1)
            # decode's 1x1 convolution: each bin's Cb, its Cr, and 1 (the softmax's denominator)
            sums = torch.cat([bin_centres(cfg).reshape(-1, 2).T, torch.ones(1, cfg.bins**2)])
            self.register_buffer("sums", sums.reshape(3, -1, 1, 1), persistent=False)
        else:
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, logits: bool = False, stride: int = 1, phase: int = 0
    ) -> torch.Tensor:
        """Chroma (N, 2, H, W); with ``logits`` and a binned head, the bins' scores (N, bins^2,
        H, W), or those of every ``stride``-th pixel of every ``stride``-th row, starting at
        row ``phase // stride`` and column ``phase % stride``.

        A binned head paints from features averaged over 2x2 pixels (the same as averaging its
        scores there: the head is linear) and the chroma is upsampled bilinearly: scoring every
        pixel cost restore its speed goal and gave the same colour (docs/training.md)."""
        if self.head is None:
            return self.net(x)
        features = self.net(x)
        if logits:
            row, col = divmod(phase % stride**2, stride)
            return self.head(features[:, :, row::stride, col::stride])
        chroma = self.decode(self.head(nnf.avg_pool2d(features, HEAD_POOL)))
        return nnf.interpolate(chroma, scale_factor=HEAD_POOL, mode="bilinear", align_corners=False)

    @staticmethod
    def logits_target(chroma: torch.Tensor, stride: int, phase: int) -> torch.Tensor:
        """The target chroma of the scores of ``forward(logits=True, stride, phase)``."""
        row, col = divmod(phase % stride**2, stride)
        return chroma[:, :, row::stride, col::stride]

    def decode(self, scores: torch.Tensor) -> torch.Tensor:
        """The annealed mean of a binned head's scores: softmax(scores / T) . centres.

        Written out (exp, one 1x1 convolution to the weighted centres and the weights' sum, a
        division) rather than as a Softmax over the channels: onnxruntime's Softmax on a
        non-last axis is slow on CPUs (most of the int8 model's time), this form is not, with
        the same result."""
        z = scores / self.cfg.temperature
        weights = torch.exp(z - z.amax(dim=1, keepdim=True))
        sums = nnf.conv2d(weights, self.sums.to(weights.dtype))
        return sums[:, :2] / sums[:, 2:]


class BinnedHead(nn.Module):
    """Chroma from features: scores for ``bins`` x ``bins`` chroma bins and their annealed mean
    (Zhang et al. 2016), or a regressing 3x3 convolution and tanh when ``cfg.bins`` is 0."""

    def __init__(self, width: int, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.scores = nn.Conv2d(
            width,
            cfg.bins**2 if cfg.bins else 2,
            1 if cfg.bins else 3,
            padding=0 if cfg.bins else 1,
        )
        if cfg.bins:
            sums = torch.cat([bin_centres(cfg).reshape(-1, 2).T, torch.ones(1, cfg.bins**2)])
            self.register_buffer("sums", sums.reshape(3, -1, 1, 1), persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.cfg.bins:
            return torch.tanh(self.scores(features))
        z = self.scores(features) / self.cfg.temperature
        weights = torch.exp(z - z.amax(dim=1, keepdim=True))  # the softmax written out (see decode)
        sums = nnf.conv2d(weights, self.sums.to(weights.dtype))
        return sums[:, :2] / sums[:, 2:]


class UNetColorizer(nn.Module):
    """G on an ImageNet-pretrained encoder: a U-Net whose encoder knows what things are.

    The luminance (N, 1, H, W) in [-1, 1] goes to the encoder (filmcolor.training.efficientnet) as a
    gray RGB picture (three equal channels, scaled as its ImageNet training scaled); a light
    decoder joins its features from stride 32 down to stride 2 (a 1x1 lateral convolution per
    stride, added to the upsampled coarser level, then a 3x3 convolution), and the head paints
    chroma at stride 2, upsampled bilinearly. H and W must be multiples of 32.

    The encoder's BatchNorm statistics stay ImageNet's (its BatchNorm layers are always in eval
    mode); :attr:`encoder` is what the trainer freezes and then fine-tunes at a lower rate.
    """

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()

        self.cfg = cfg
        self.encoder = EfficientNetLite0()
        width = cfg.filters
        widths = [
            max(16, width // 2),
            width,
            width,
            width,
            width,
        ]  # stride 2 is the finest: narrower
        self.laterals = nn.ModuleList(
            nn.Conv2d(c, w, 1) for c, w in zip(TAP_CHANNELS, widths, strict=True)
        )
        # No normalisation in the decoder: each sample's output depends on it alone (the trainer
        # batches several calls of G into one), and brightness is not normalised away.
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True)) for w in widths[:-1]
        )
        self.narrow = nn.Conv2d(width, widths[0], 1)  # stride 4 to stride 2's width
        self.head = BinnedHead(widths[0], cfg)
        # luma in [-1, 1] is levels (y + 1) * 127.5; the trunk takes (levels - 127) / 128
        mean, std = INPUT_LEVELS
        self.register_buffer("in_scale", torch.full((1, 3, 1, 1), 127.5 / std), persistent=False)
        self.register_buffer(
            "in_shift", torch.full((1, 3, 1, 1), (127.5 - mean) / std), persistent=False
        )

    def train(self, mode: bool = True) -> UNetColorizer:
        super().train(mode)
        for module in self.encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()  # ImageNet's statistics, never those of a training batch
        return self

    frozen_encoder = False
    """Set by the trainer while the encoder keeps its weights: it then runs without gradients."""

    def features(self, luma: torch.Tensor) -> torch.Tensor:
        """The decoder's output at stride 2 (N, width/2, H/2, W/2)."""
        rgb = luma * self.in_scale + self.in_shift  # (N, 3, H, W): one channel broadcast to three
        with torch.no_grad() if self.frozen_encoder else contextlib.nullcontext():
            taps = self.encoder(rgb)
        x = self.laterals[-1](taps[-1])
        for level in range(len(taps) - 2, -1, -1):
            up = nnf.interpolate(
                x, size=taps[level].shape[2:], mode="bilinear", align_corners=False
            )
            if level == 0:
                up = self.narrow(up)
            x = self.smooth[level](self.laterals[level](taps[level]) + up)
        return x

    def forward(
        self, x: torch.Tensor, logits: bool = False, stride: int = 1, phase: int = 0
    ) -> torch.Tensor:  # noqa: ARG002
        """Chroma (N, 2, H, W); with ``logits`` and a binned head, the bins' scores where the
        head paints, at stride 2 (as many as a ResNet generator's at ``stride`` 2, which this
        head's resolution replaces; compare them with :meth:`logits_target`)."""
        features = self.features(x)
        if logits:
            return self.head.scores(features)
        chroma = self.head(features)
        return nnf.interpolate(chroma, size=x.shape[2:], mode="bilinear", align_corners=False)

    @staticmethod
    def logits_target(chroma: torch.Tensor, stride: int, phase: int) -> torch.Tensor:  # noqa: ARG004
        """The target chroma of the scores of ``forward(logits=True)``: its 2x2 means."""
        return nnf.avg_pool2d(chroma, 2)


def bin_centres(cfg: GeneratorConfig) -> torch.Tensor:
    """(bins, bins, 2) chroma at each bin's centre: [i, j] = (Cb of i, Cr of j)."""
    axis = torch.linspace(-cfg.bin_range, cfg.bin_range, cfg.bins)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)


def binned_cross_entropy(
    scores: torch.Tensor, target: torch.Tensor, cfg: GeneratorConfig
) -> torch.Tensor:
    """Per-pixel cross-entropy (N, 1, H, W) of a binned head's scores against target chroma.

    Each target (N, 2, H, W) is spread over the four bins around it, bilinearly, so the soft
    label's mean is the target itself (inside the bins' range; beyond it, the edge).
    """
    step = 2 * cfg.bin_range / (cfg.bins - 1)
    pos = ((target.float() + cfg.bin_range) / step).clamp(0, cfg.bins - 1)
    low = pos.floor().clamp(max=cfg.bins - 2)
    frac = pos - low
    low = low.long()
    log_p = torch.log_softmax(scores.float(), dim=1)
    loss = torch.zeros_like(frac[:, :1])
    for di in (0, 1):
        wi = frac[:, 0:1] if di else 1 - frac[:, 0:1]
        for dj in (0, 1):
            wj = frac[:, 1:2] if dj else 1 - frac[:, 1:2]
            index = (low[:, 0:1] + di) * cfg.bins + low[:, 1:2] + dj
            loss = loss - wi * wj * log_p.gather(1, index)
    return loss


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake scores, one per 70x70 patch with 3 layers
    (C64-C128-C256-C512)."""

    def __init__(self, in_channels: int, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        width = cfg.filters
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for i in range(1, cfg.layers + 1):
            previous, width = width, cfg.filters * min(2**i, 8)
            stride = 2 if i < cfg.layers else 1
            layers += [
                nn.Conv2d(previous, width, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(width),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Normal(0, 0.02) initialisation, as in the paper's reference code."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_generator(cfg: GeneratorConfig, role: str = "colorizer") -> nn.Module:
    """G ('colorizer', luminance -> chroma) or F ('decolorizer', Y'CbCr -> luminance).

    With ``cfg.encoder`` set, G is a :class:`UNetColorizer` (its encoder's ImageNet weights are
    loaded by the trainer, :func:`filmcolor.training.efficientnet.load_imagenet_weights`); F is
    always
    the ResNet generator (no encoder, regressing)."""
    in_channels, out_channels = CHANNELS[role]
    if role != "colorizer":
        cfg = dataclasses.replace(cfg, bins=0, encoder="none")
    if cfg.encoder != "none":
        net: nn.Module = UNetColorizer(cfg)
        for part in (net.laterals, net.smooth, net.narrow, net.head):
            init_weights(part)
        return net
    net = ResnetGenerator(in_channels, out_channels, cfg)
    init_weights(net)
    return net


def build_discriminator(cfg: DiscriminatorConfig, in_channels: int) -> PatchDiscriminator:
    """D_A (1 channel, B&W frames) or D_B (3 channels, colour frames)."""
    net = PatchDiscriminator(in_channels, cfg)
    init_weights(net)
    return net
