"""Build the seed's first experiment: gray flowers (A) against colour flowers (B).

    python pipelines/prepare_flowers.py --shared ../shared/data --out data/flowers
    filmcolor train pipelines/flowers.toml --data data/flowers --out runs/flowers

The 4,317 colour flower photos of ../shared/data/modern_color_flowers are shuffled (seed 0)
and split in two disjoint halves, so that no flower is in both folders when training
unpaired: trainA holds desaturated copies (PNG, written here) of one half, trainB links to
the other half. 10% of each half is held out as testA/testB. The seed used 2K per side.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/flowers"))
    parser.add_argument(
        "--per-side", type=int, default=2000, help="images per domain (the seed: 2K)"
    )
    parser.add_argument("--test-fraction", type=float, default=0.1)
    args = parser.parse_args()
    photos = sorted((args.shared / "modern_color_flowers" / "flowers").rglob("*.jpg"))
    if not photos:
        raise SystemExit(f"no flower photos under {args.shared}/modern_color_flowers/flowers")
    random.Random(0).shuffle(photos)
    half = min(args.per_side, len(photos) // 2)
    sides = {"A": photos[:half], "B": photos[half : 2 * half]}
    for side, files in sides.items():
        n_test = round(len(files) * args.test_fraction)
        for split, chunk in (("test", files[:n_test]), ("train", files[n_test:])):
            folder = args.out / f"{split}{side}"
            folder.mkdir(parents=True, exist_ok=True)
            for path in chunk:
                name = f"{path.parent.name}_{path.stem}"
                if side == "A":
                    target = folder / f"{name}.png"
                    if not target.exists():
                        gray = cv2.cvtColor(
                            cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY
                        )
                        cv2.imwrite(str(target), gray)
                else:
                    target = folder / f"{name}{path.suffix}"
                    if not target.exists():
                        target.symlink_to(path.resolve())
            print(f"{folder}: {len(chunk)} images")


if __name__ == "__main__":
    main()
