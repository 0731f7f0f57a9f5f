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

import torch
from torch import nn

from .config import DiscriminatorConfig, GeneratorConfig

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
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake scores, one per 70x70 patch with 3 layers (C64-C128-C256-C512)."""

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


def build_generator(cfg: GeneratorConfig, role: str = "colorizer") -> ResnetGenerator:
    """G ('colorizer', luminance -> chroma) or F ('decolorizer', Y'CbCr -> luminance)."""
    in_channels, out_channels = CHANNELS[role]
    net = ResnetGenerator(in_channels, out_channels, cfg)
    init_weights(net)
    return net


def build_discriminator(cfg: DiscriminatorConfig, in_channels: int) -> PatchDiscriminator:
    """D_A (1 channel, B&W frames) or D_B (3 channels, colour frames)."""
    net = PatchDiscriminator(in_channels, cfg)
    init_weights(net)
    return net
