"""Average the colorizer G of several checkpoints of one run into a new checkpoint (weight averaging
as in SWA: a late-training model whose step-to-step noise is averaged out).

    python pipelines/average_checkpoints.py a.pt b.pt c.pt averaged.pt
    filmcolor export averaged.pt model.onnx

The checkpoints must hold the same generator (the same run's, after its encoder stopped being
frozen: its BatchNorm statistics are ImageNet's in all of them); the last one gives everything
else (step, optimisers, the other networks). Float weights are averaged, other tensors (step
counters) taken from the last.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="checkpoints, then the output")
    args = parser.parse_args()
    *paths, out = args.checkpoints
    if len(paths) < 2:
        parser.error("give two checkpoints or more, then the output")
    states = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    shapes = {str(s["config"]["generator"]) for s in states}
    if len(shapes) > 1:
        parser.error(f"the checkpoints hold different generators: {shapes}")
    base = states[-1]
    averaged = {}
    for key, value in base["networks"]["colorizer"].items():
        if value.is_floating_point():
            total = sum(s["networks"]["colorizer"][key].float() for s in states)
            averaged[key] = (total / len(states)).to(value.dtype)
        else:
            averaged[key] = value
    base["networks"]["colorizer"] = averaged
    torch.save(base, out)
    print(f"averaged G of steps {[int(s['step']) for s in states]} into {out}")


if __name__ == "__main__":
    main()
