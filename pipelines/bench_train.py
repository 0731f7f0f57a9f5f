"""Training speed and memory: filmcolor's CycleGAN step against the reference step.

    python pipelines/bench_train.py                      # 128 and 256 px, paper and light models
    python pipelines/bench_train.py --sizes 128 --steps 3 --devices cpu,cuda

Prints iterations/s and peak memory at batch 1 for each (model, image size, device), for
`filmcolor` (filmcolor.training.loop's own step at its defaults: luminance -> chroma generators,
identity term only where it applies, calls of one network batched, one backward pass for
both critics, mixed precision: bf16 on CPUs that have it, fp16 on CUDA), `filmcolor fp32`
(the same with amp off), and `reference`: the training step
of the widely used PyTorch reference implementation (pytorch-CycleGAN-and-pix2pix,
models/cycle_gan_model.py `optimize_parameters`, at its defaults: RGB -> RGB generators,
identity losses through both generators, separate backward passes for D_A and D_B), written
again here on the same network classes because that repository cannot be installed from the
package registries this project uses. Same network sizes, batch, image size and device.

Each measurement runs in its own process (peak memory = that process's peak RSS on CPU, or
torch.cuda.max_memory_allocated on a GPU), after three untimed warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {"paper": (64, 9), "light": (32, 6)}


def reference_step_factory(filters: int, blocks: int, device):  # noqa: ANN001, ANN201
    """The reference implementation's optimize_parameters() at its default settings."""
    import random

    import torch
    import torch.nn.functional as nnf

    from filmcolor.config import DiscriminatorConfig, GeneratorConfig
    from filmcolor.training.networks import PatchDiscriminator, ResnetGenerator, init_weights

    gen_cfg = GeneratorConfig(filters=filters, blocks=blocks)
    g_a, g_b = ResnetGenerator(3, 3, gen_cfg), ResnetGenerator(3, 3, gen_cfg)
    d_a, d_b = (
        PatchDiscriminator(3, DiscriminatorConfig()),
        PatchDiscriminator(3, DiscriminatorConfig()),
    )
    for net in (g_a, g_b, d_a, d_b):
        init_weights(net)
        net.to(device).train()
    opt_g = torch.optim.Adam(
        list(g_a.parameters()) + list(g_b.parameters()), lr=2e-4, betas=(0.5, 0.999)
    )
    opt_d = torch.optim.Adam(
        list(d_a.parameters()) + list(d_b.parameters()), lr=2e-4, betas=(0.5, 0.999)
    )
    pools: dict[str, list] = {"a": [], "b": []}
    rng = random.Random(0)

    def pool(name: str, image):  # noqa: ANN001, ANN202 - the reference ImagePool, size 50
        images = pools[name]
        if len(images) < 50:
            images.append(image.detach().clone())
            return image
        if rng.random() > 0.5:
            i = rng.randrange(50)
            old, images[i] = images[i], image.detach().clone()
            return old
        return image

    def gan(pred, real: bool):  # noqa: ANN001, ANN202
        return nnf.mse_loss(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))

    def set_requires_grad(nets, flag: bool) -> None:  # noqa: ANN001
        for net in nets:
            for p in net.parameters():
                p.requires_grad = flag

    def step(real_a, real_b) -> None:  # noqa: ANN001
        fake_b = g_a(real_a)
        rec_a = g_b(fake_b)
        fake_a = g_b(real_b)
        rec_b = g_a(fake_a)
        set_requires_grad([d_a, d_b], False)
        opt_g.zero_grad()
        idt_a = g_a(real_b)
        idt_b = g_b(real_a)
        loss = (
            nnf.l1_loss(idt_a, real_b) * 10 * 0.5
            + nnf.l1_loss(idt_b, real_a) * 10 * 0.5
            + gan(d_a(fake_b), True)
            + gan(d_b(fake_a), True)
            + nnf.l1_loss(rec_a, real_a) * 10
            + nnf.l1_loss(rec_b, real_b) * 10
        )
        loss.backward()
        opt_g.step()
        set_requires_grad([d_a, d_b], True)
        opt_d.zero_grad()
        fb = pool("b", fake_b)
        loss_da = (gan(d_a(real_b), True) + gan(d_a(fb.detach()), False)) * 0.5
        loss_da.backward()
        fa = pool("a", fake_a)
        loss_db = (gan(d_b(real_a), True) + gan(d_b(fa.detach()), False)) * 0.5
        loss_db.backward()
        opt_d.step()

    def run(size: int) -> None:
        step(
            torch.rand(1, 3, size, size, device=device) * 2 - 1,
            torch.rand(1, 3, size, size, device=device) * 2 - 1,
        )

    return run


def filmcolor_step_factory(filters: int, blocks: int, device, size: int, amp: bool = True):  # noqa: ANN001, ANN201
    """filmcolor.training.loop's own step at the paper's default settings (amp: its default)."""
    import cv2
    import numpy as np
    import torch

    from filmcolor.config import load_train_config
    from filmcolor.training.loop import Trainer

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    for side in ("trainA", "trainB"):
        (tmp / side).mkdir()
        cv2.imwrite(str(tmp / side / "x.png"), np.zeros((size, size, 3), np.uint8))
    cfg = load_train_config(
        None,
        {
            "generator.filters": filters,
            "generator.blocks": blocks,
            "crop_size": size,
            "load_size": size,
            "device": device.type,
            "workers": 0,
            "amp": amp,
        },
    )
    trainer = Trainer(cfg, tmp, tmp / "run", resume=False)
    for net in trainer.nets.named().values():
        net.train()

    def run(size: int) -> None:
        batch = {
            "a": torch.rand(1, 1, size, size) * 2 - 1,
            "b": torch.rand(1, 3, size, size) * 2 - 1,
        }
        trainer.train_step(batch)

    return run


def measure_one(
    impl: str, model: str, size: int, device_name: str, steps: int, threads: int
) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    filters, blocks = MODELS[model]
    if impl == "reference":
        run = reference_step_factory(filters, blocks, device)
    else:
        run = filmcolor_step_factory(filters, blocks, device, size, amp=impl == "filmcolor")
    for _ in range(3):  # warm-up: oneDNN builds its kernels in the first steps
        run(size)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        run(size)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"it_s": steps / seconds, "peak_mb": peak_mb}


def compare_precision(data: Path, steps: int) -> None:
    """Train the light model twice from the same seed, mixed precision and fp32, on real data.

    Prints the mean of each loss over the last third of the steps: mixed precision is kept
    only if it learns as well as fp32 (the 'no loss of quality' part of the goal).
    """
    from filmcolor.config import load_train_config
    from filmcolor.training.loop import Trainer

    rows = {}
    for amp in (True, False):
        cfg = load_train_config(
            None,
            {
                "generator.filters": 32,
                "generator.blocks": 6,
                "crop_size": 128,
                "load_size": 143,
                "workers": 0,
                "amp": amp,
                "steps": steps,
                "seed": 1,
                "lambda_supervised": 10.0,
            },
        )
        trainer = Trainer(cfg, data, Path(tempfile.mkdtemp(prefix="bench-quality-")), resume=False)
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        for batch in trainer.loader():
            history.append(trainer.train_step(batch))
            if trainer.step >= steps:
                break
        tail = history[-max(1, steps // 3) :]
        rows[
            "bf16/fp16" if amp and trainer.use_amp else "fp32" if not amp else "amp (unavailable)"
        ] = (
            {k: sum(h[k] for h in tail) / len(tail) for k in tail[0]},
            steps / (time.perf_counter() - start),
        )
    keys = list(next(iter(rows.values()))[0])
    print(
        f"# light model, {steps} steps, batch 1, 128 px, seed 1, on {data}; mean of the last third"
    )
    print("| precision | it/s | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, (means, speed) in rows.items():
        print(f"| {name} | {speed:.2f} | " + " | ".join(f"{means[k]:.3f}" for k in keys) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--models", default="paper,light")
    parser.add_argument("--devices", default="cpu,cuda", help="cuda rows are skipped without a GPU")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument(
        "--quality-data",
        type=Path,
        help="also train the light model here twice (bf16, fp32) and compare losses",
    )
    parser.add_argument("--quality-steps", type=int, default=150)
    parser.add_argument(
        "--one", nargs=4, metavar=("IMPL", "MODEL", "SIZE", "DEVICE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        impl, model, size, device = args.one
        print(json.dumps(measure_one(impl, model, int(size), device, args.steps, args.threads)))
        return
    import torch

    if args.quality_data:
        compare_precision(args.quality_data, args.quality_steps)
        return
    devices = [d for d in args.devices.split(",") if d == "cpu" or torch.cuda.is_available()]
    machine = f"{torch.get_num_threads()} CPU threads" + (
        f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    )
    print(
        f"# CycleGAN training step, batch 1, {args.steps} timed steps each; torch "
        f"{torch.__version__}; {machine}"
    )
    print(
        "| device | model | size | filmcolor it/s | filmcolor fp32 it/s | reference it/s "
        "| speed-up | speed-up fp32 | filmcolor peak MB | fp32 peak MB | reference peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for device in devices:
        for model in args.models.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                results = {}
                for impl in ("filmcolor", "filmcolor-fp32", "reference"):
                    cmd = [
                        sys.executable,
                        __file__,
                        "--one",
                        impl,
                        model,
                        str(size),
                        device,
                        "--steps",
                        str(args.steps),
                        "--threads",
                        str(args.threads),
                    ]
                    done = subprocess.run(cmd, capture_output=True, text=True)
                    if done.returncode != 0:
                        sys.exit(
                            f"bench_train: {impl} {model} {size} {device} "
                            f"failed:\n{done.stderr[-2000:]}"
                        )
                    results[impl] = json.loads(done.stdout.strip().splitlines()[-1])
                ours, fp32, ref = (
                    results["filmcolor"],
                    results["filmcolor-fp32"],
                    results["reference"],
                )
                print(
                    f"| {device} | {model} | {size} | {ours['it_s']:.3f} | {fp32['it_s']:.3f} | "
                    f"{ref['it_s']:.3f} | {ours['it_s'] / ref['it_s']:.2f}x | "
                    f"{fp32['it_s'] / ref['it_s']:.2f}x | "
                    f"{ours['peak_mb']:.0f} | {fp32['peak_mb']:.0f} | {ref['peak_mb']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
