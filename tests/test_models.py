"""models.py: shapes and contracts of the networks at tiny widths."""

import pytest

torch = pytest.importorskip("torch")

from filmcolor.config import DiscriminatorConfig, GeneratorConfig  # noqa: E402
from filmcolor.models import build_discriminator, build_generator  # noqa: E402


@pytest.mark.parametrize(("height", "width"), [(32, 32), (48, 80), (64, 36)])
def test_generators_keep_size_and_channels(height: int, width: int):
    cfg = GeneratorConfig(filters=4, blocks=1)
    colorizer = build_generator(cfg, "colorizer")
    decolorizer = build_generator(cfg, "decolorizer")
    chroma = colorizer(torch.zeros(2, 1, height, width))
    assert chroma.shape == (2, 2, height, width)
    assert chroma.abs().max() <= 1  # tanh
    assert decolorizer(torch.zeros(1, 3, height, width)).shape == (1, 1, height, width)


def test_paper_and_light_sizes():
    def count(cfg):
        return sum(p.numel() for p in build_generator(cfg).parameters())

    assert 11.0e6 < count(GeneratorConfig.paper()) < 11.5e6
    assert 1.8e6 < count(GeneratorConfig.light()) < 2.1e6


def test_patch_discriminator_receptive_grid():
    critic = build_discriminator(DiscriminatorConfig(filters=8), 3)
    assert critic(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # 70x70 patches
