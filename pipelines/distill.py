"""Distil a lighter colorizer from a trained one: the student learns the teacher's chroma.

    python pipelines/distill.py --teacher filmcolor/weights/default.onnx --data data/default \\
        --filters 16 --blocks 6 --steps 3000 --out runs/light
    filmcolor export runs/light light.onnx --working-size 144

The teacher (an exported generator, run by onnxruntime) colorizes every training image once,
at the trainer's load size (short side 144, the working size restore feeds it); the student,
a ResNet generator with fewer filters or blocks, is then trained with an L1 loss on the
teacher's chroma over random crops (and mirror images) of those pictures: the B&W film
frames (trainA) and the colour pictures' luminance (trainB) alike, so it learns what the
teacher does on both. No adversarial or cycle terms: only the teacher's mapping is copied.
The run folder gets a checkpoint in the trainer's format (``checkpoints/last.pt``), which
``filmcolor export`` turns into a model restore can use.

Why: on a CPU the model is a large part of restore's time (docs/benchmarks.md). A generator
with half the filters costs about a quarter of the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as nnf

from filmcolor.color import split_rgb
from filmcolor.config import GeneratorConfig, TrainConfig, config_to_dict
from filmcolor.io.files import load_rgb
from filmcolor.training.checkpoint import save_checkpoint
from filmcolor.training.data import domain_folders, find_images
from filmcolor.training.loop import cpu_bf16_supported
from filmcolor.training.networks import build_generator


def teacher_pairs(
    teacher: Path, data: Path, load_size: int, multiple: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(luminance (H, W), teacher chroma (2, H, W)) for every image of the data folder."""
    session = ort.InferenceSession(str(teacher), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    pairs = []
    for folder in domain_folders(data):
        for path in find_images(folder):
            try:
                rgb = load_rgb(path, load_size, upscale=True)
            except OSError:
                continue
            h, w = (rgb.shape[0] // multiple) * multiple, (rgb.shape[1] // multiple) * multiple
            luma, _ = split_rgb(np.ascontiguousarray(rgb[:h, :w]))
            chroma = session.run(None, {name: luma[None, None].astype(np.float32)})[0][0]
            pairs.append((luma.astype(np.float32), chroma.astype(np.float32)))
    return pairs


def init_from_teacher(student: torch.nn.Module, checkpoint: Path) -> list[int]:
    """Start the student from the teacher's own weights (same filters, fewer blocks): every
    layer but the residual blocks is copied, and of the teacher's blocks an evenly spaced
    selection, the first and the last among them. Returns the teacher blocks kept."""
    from filmcolor.training.checkpoint import generator_config_of, load_checkpoint
    from filmcolor.training.networks import ResidualBlock

    state = load_checkpoint(checkpoint)
    teacher = build_generator(generator_config_of(state), "colorizer")
    teacher.load_state_dict(state["networks"]["colorizer"])
    t_layers, s_layers = list(teacher.net), list(student.net)
    t_blocks = [i for i, m in enumerate(t_layers) if isinstance(m, ResidualBlock)]
    s_blocks = [i for i, m in enumerate(s_layers) if isinstance(m, ResidualBlock)]
    keep = sorted({int(round(x)) for x in np.linspace(0, len(t_blocks) - 1, len(s_blocks))})
    if len(keep) != len(s_blocks) or len(t_layers) - len(t_blocks) != len(s_layers) - len(s_blocks):
        raise SystemExit(
            "--init-from needs a teacher of the same filters and at least as many blocks"
        )
    before = t_blocks[0]
    pairs = list(zip(range(before), range(before), strict=True))
    pairs += [(t_blocks[k], s) for k, s in zip(keep, s_blocks, strict=True)]
    pairs += list(
        zip(
            range(t_blocks[-1] + 1, len(t_layers)),
            range(s_blocks[-1] + 1, len(s_layers)),
            strict=True,
        )
    )
    for t, s in pairs:
        s_layers[s].load_state_dict(t_layers[t].state_dict())
    return keep


def chroma_magnitude(chroma: torch.Tensor) -> torch.Tensor:
    """Per-pixel saturation of (N, 2, H, W) chroma."""
    return torch.sqrt((chroma.float() ** 2).sum(1) + 1e-6)


def batches(
    pairs: list[tuple[np.ndarray, np.ndarray]], size: int, crop: int, rng: np.random.Generator
):
    """Random crops (mirrored half the time) of random pictures, forever."""
    while True:
        lumas, chromas = [], []
        for index in rng.integers(len(pairs), size=size):
            luma, chroma = pairs[int(index)]
            h, w = luma.shape
            top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            y, c = (
                luma[top : top + crop, left : left + crop],
                chroma[:, top : top + crop, left : left + crop],
            )
            if rng.random() < 0.5:
                y, c = y[:, ::-1], c[:, :, ::-1]
            lumas.append(np.ascontiguousarray(y)[None])
            chromas.append(np.ascontiguousarray(c))
        yield torch.from_numpy(np.stack(lumas)), torch.from_numpy(np.stack(chromas))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--teacher", type=Path, default=Path("filmcolor/weights/default.onnx"))
    parser.add_argument(
        "--data", type=Path, required=True, help="a training data folder (trainA/, trainB/)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/light"))
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--load-size", type=int, default=144)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init-from", type=Path, help="the teacher's training checkpoint: start from its weights"
    )
    parser.add_argument(
        "--magnitude-weight",
        type=float,
        default=0.0,
        help=("weight of an L1 term on the chroma's magnitude (saturation) per pixel"),
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen_cfg = GeneratorConfig(filters=args.filters, blocks=args.blocks)
    started = time.perf_counter()
    pairs = teacher_pairs(args.teacher, args.data, args.load_size, gen_cfg.size_multiple)
    print(
        f"teacher: {len(pairs)} pictures colorized in {time.perf_counter() - started:.0f} s",
        flush=True,
    )

    student = build_generator(gen_cfg, "colorizer")
    if args.init_from is not None:
        print(
            f"student starts from the teacher's layers, blocks "
            f"{init_from_teacher(student, args.init_from)}"
        )
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr, betas=(0.5, 0.999))
    decay_from = int(args.steps * 0.6)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            1.0
            if step < decay_from
            else max(0.0, 1 - (step - decay_from) / (args.steps - decay_from))
        ),
    )
    amp = cpu_bf16_supported()
    data = batches(pairs, args.batch_size, args.crop, np.random.default_rng(args.seed))
    started, running = time.perf_counter(), 0.0
    for step in range(1, args.steps + 1):
        luma, target = next(data)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            chroma = student(luma)
        loss = nnf.l1_loss(chroma.float(), target)
        if args.magnitude_weight:
            # L1 alone lets a student that is unsure of a hue fall back toward gray: ask for the
            # teacher's saturation too.
            loss = loss + args.magnitude_weight * nnf.l1_loss(
                chroma_magnitude(chroma), chroma_magnitude(target)
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running = loss.item() if step == 1 else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0 or step == args.steps:
            rate = step / (time.perf_counter() - started)
            print(
                f"step {step}/{args.steps}: loss to the teacher {running:.4f} ({rate:.2f} steps/s)",
                flush=True,
            )

    cfg = TrainConfig(
        generator=gen_cfg,
        load_size=args.load_size,
        crop_size=args.crop,
        batch_size=args.batch_size,
        steps=args.steps,
        seed=args.seed,
    )
    state = {
        "format": 1,
        "step": args.steps,
        "config": config_to_dict(cfg),
        "networks": {"colorizer": student.state_dict()},
        "distilled_from": {"teacher": str(args.teacher), "l1": running, "pictures": len(pairs)},
    }
    path = args.out / "checkpoints" / "last.pt"
    save_checkpoint(path, state)  # atomic, like the trainer's
    (args.out / "distill.json").write_text(
        json.dumps({**vars(args), "l1": running}, default=str, indent=1)
    )
    print(f"wrote {path} ({time.perf_counter() - started:.0f} s of training)")


if __name__ == "__main__":
    main()
