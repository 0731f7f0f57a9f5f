"""Build the training folders of the default model from ../shared/data.

    python pipelines/prepare_default.py --shared ../shared/data --out data/default

trainA (B&W): frames of the old films (chaplin.mp4 and a-bomb, 4 per second, through
ffmpeg), the damaged old-film frame sequences and the historic photographs.
trainB (colour): BSDS500 train+val, the ImageNet sample, SUN/Hays scenes, Urban100,
people (faces capped so they do not dominate) and some flowers.
Held out for evaluation, never linked here: BSDS500 test and the REDS / DAVIS sequences.
Images are linked, not copied; video frames are written as PNG.
"""

from __future__ import annotations

import argparse
import random
import subprocess
from pathlib import Path

IMAGES = {".jpg", ".jpeg", ".png"}


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGES)


def link_all(files: list[Path], target: Path, prefix: str) -> int:
    target.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(files):
        link = target / f"{prefix}_{i:05d}{path.suffix.lower()}"
        if not link.exists():
            link.symlink_to(path.resolve())
    return len(files)


def video_frames(video: Path, target: Path, prefix: str, fps: float = 4.0) -> int:
    target.mkdir(parents=True, exist_ok=True)
    pattern = str(target / f"{prefix}_%05d.png")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), "-vf", f"fps={fps},format=gray", pattern],
        check=True,
    )
    return len(list(target.glob(f"{prefix}_*.png")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/default"))
    parser.add_argument("--faces", type=int, default=300, help="face close-ups to keep")
    parser.add_argument("--flowers", type=int, default=300, help="flower photos to keep")
    args = parser.parse_args()
    shared, a, b = args.shared, args.out / "trainA", args.out / "trainB"
    rng = random.Random(0)
    counts = {}
    counts["film frames"] = sum(
        video_frames(shared / "oldfilm_video" / name, a / "films", Path(name).stem)
        for name in ("chaplin.mp4", "a-bomb_blast_effects_part.mp4")
    )
    counts["damaged film frames"] = link_all(images(shared / "oldfilm_frames"), a / "rtn", "rtn")
    counts["old photos"] = link_all(images(shared / "oldphotos_ddcolor"), a / "photos", "old")
    bsds = images(shared / "color_photos/bsds500/train") + images(shared / "color_photos/bsds500/val")
    counts["bsds500 train+val"] = link_all(bsds, b / "bsds", "bsds")
    for name in ("imagenet_sample_s256", "sunhays80_s384", "urban100_jpg"):
        counts[name] = link_all(images(shared / "color_photos" / name), b / name, name)
    faces = images(shared / "color_people/faces_nomask")
    rng.shuffle(faces)
    counts["faces"] = link_all(sorted(faces[: args.faces]), b / "faces", "face")
    people = [p for d in ("coco_person", "crowd_shanghaitechB", "deepface_tests", "groups_ultralight", "openpose_media")
              for p in images(shared / "color_people" / d)]
    counts["people"] = link_all(people, b / "people", "people")
    flowers = images(shared / "modern_color_flowers/flowers")
    rng.shuffle(flowers)
    counts["flowers"] = link_all(sorted(flowers[: args.flowers]), b / "flowers", "flower")
    for key, value in counts.items():
        print(f"{key:>24}: {value}")
    print(f"trainA: {len(images(a))} B&W images, trainB: {len(images(b))} colour images in {args.out}")


if __name__ == "__main__":
    main()
