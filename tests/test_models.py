"""models.py: shapes and contracts of the networks at tiny widths."""

import dataclasses
import math

import pytest

torch = pytest.importorskip("torch")

from filmcolor.config import DiscriminatorConfig, GeneratorConfig  # noqa: E402
from filmcolor.training.networks import build_discriminator, build_generator  # noqa: E402


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


def test_binned_head_decodes_the_annealed_mean_of_its_bins():
    """bins > 0: the colorizer scores bins x bins chroma bins and returns their annealed mean;
    the cross-entropy's best scores give back a target between bin centres at temperature 1."""
    from filmcolor.training.networks import bin_centres, binned_cross_entropy

    cfg = GeneratorConfig(filters=4, blocks=1, bins=5, bin_range=0.6, temperature=1.0)
    colorizer = build_generator(cfg, "colorizer")
    assert build_generator(cfg, "decolorizer").head is None  # F always regresses
    luma = torch.rand(2, 1, 32, 48) * 2 - 1
    scores = colorizer(luma, logits=True)
    assert scores.shape == (2, 25, 32, 48)
    # painted from 2x2-averaged scores, upsampled (models.HEAD_POOL)
    pooled = colorizer.decode(torch.nn.functional.avg_pool2d(scores, 2))
    assert pooled.shape == (2, 2, 16, 24)
    upsampled = torch.nn.functional.interpolate(
        pooled, scale_factor=2, mode="bilinear", align_corners=False
    )
    assert torch.allclose(colorizer(luma), upsampled, atol=1e-6)
    for phase, (row, col) in enumerate(
        [(0, 0), (0, 1), (1, 0), (1, 1)]
    ):  # what training sees, step by step
        assert torch.equal(
            colorizer(luma, logits=True, stride=2, phase=phase), scores[:, :, row::2, col::2]
        )
    assert bin_centres(cfg)[0, 4].tolist() == pytest.approx([-0.6, 0.6])
    # decode is softmax(scores / T) . centres, also where exp(scores / T) would overflow
    cool = build_generator(dataclasses.replace(cfg, temperature=0.38), "colorizer")
    wild = torch.randn(2, 25, 3, 4) * 40
    plain = torch.einsum(
        "nkhw,kc->nchw", torch.softmax(wild / 0.38, dim=1), bin_centres(cfg).reshape(25, 2)
    )
    assert torch.isfinite(cool.decode(wild)).all()
    assert torch.allclose(cool.decode(wild), plain, atol=1e-6)
    # one bin far likelier than the others: its centre, whatever the temperature
    peaked = torch.full((1, 25, 1, 1), -30.0)
    peaked[0, 1 * 5 + 3] = 30.0
    assert colorizer.decode(peaked)[0, :, 0, 0].tolist() == pytest.approx([-0.3, 0.3], abs=1e-5)
    # the soft label of (0.15, -0.45) is split between the bins around it: fit scores to it
    target = torch.tensor([0.15, -0.45]).reshape(1, 2, 1, 1)
    fitted = torch.zeros(1, 25, 1, 1, requires_grad=True)
    opt = torch.optim.Adam([fitted], lr=0.3)
    for _ in range(400):
        loss = binned_cross_entropy(fitted, target, cfg).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert colorizer.decode(fitted)[0, :, 0, 0].tolist() == pytest.approx([0.15, -0.45], abs=0.01)
    assert loss.item() == pytest.approx(
        math.log(4), abs=0.01
    )  # the entropy of four bins at 1/4 each
    beyond = torch.tensor([0.9, 0.0]).reshape(1, 2, 1, 1)  # past the range: the edge bin
    assert binned_cross_entropy(peaked.clone().fill_(0), beyond, cfg).item() == pytest.approx(
        torch.log(torch.tensor(25.0)).item(), abs=1e-5
    )
    with pytest.raises(Exception, match="invalid generator head"):
        GeneratorConfig(bins=1)
