"""Build the training folders of the default model from ../shared/data.

    python pipelines/prepare_default.py --shared ../shared/data --out data/default

trainA (B&W): frames of the old films (chaplin.mp4 and a-bomb) through ``filmcolor extract``
(shots found, frames sampled per shot, bars cropped, near-duplicates dropped), the damaged
old-film frame sequences and the historic photographs.
trainB (colour), one folder per kind of picture (the sets that ``set_weights`` weighs):
scenes/ (BSDS500 train+val, SUN/Hays, Urban100, and with --scenes the everyday scenes of
color_scenes/), objects/ (the ImageNet sample, and with --scenes PACS and Caltech-101),
people/ (faces, capped by --faces, and people in scenes), flowers/ (capped by --flowers).
Held out for evaluation, never linked here: BSDS500 test and the REDS / DAVIS sequences.
Images are linked, not copied; the extracted film frames and their manifest live in
OUT/films (the extract data folder), linked into trainA.

``--shrink DEST`` also writes a copy of trainA/ and trainB/ whose images are shrunk to the
load size (short side 144) as JPEG q95: what trains the same (the trainer scales every image
to that size first) and travels to a lent GPU machine (about 35 MB instead of 110):

    python pipelines/prepare_default.py --shared ../shared/data --out data/default --shrink
    .gpu/data
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

IMAGES = {".jpg", ".jpeg", ".png"}


SCENE_SETS = (
    "sun_cmu16720",
    "pacs_photo",
    "weather_mwd",
    "caltech101",
    "deep_photo_style",
    "camvid_segnet",
)
"""The folders of color_scenes/ (everyday colour photos: interiors, landscapes, skies, animals)."""


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGES)


def link_all(files: list[Path], target: Path, prefix: str) -> int:
    target.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(files):
        link = target / f"{prefix}_{i:05d}{path.suffix.lower()}"
        if not link.exists():
            link.symlink_to(path.resolve())
    return len(files)


def film_frames(videos: list[Path], out: Path, target: Path) -> int:
    """Extract the B&W films with the project's own ``filmcolor extract``, then link them."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "filmcolor",
            "extract",
            *map(str, videos),
            "--out",
            str(out),
            "--domain",
            "bw",
            "--test-fraction",
            "0",
            "--per-shot",
            "12",
            "--every",
            "0.25",
            "--size",
            "144",
            "--quiet",
        ],
        check=True,
    )
    return link_all(images(out / "trainA"), target, "film")


def shrink_copy(source: Path, dest: Path, size: int = 144) -> int:
    """Copy trainA/ and trainB/ of ``source`` to ``dest``, each image's short side at most
    ``size``."""
    import cv2  # a base dependency of filmcolor

    count = 0
    for side in ("trainA", "trainB"):
        for path in images(source / side):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            height, width = image.shape[:2]
            scale = size / min(height, width)
            if scale < 1:
                image = cv2.resize(
                    image,
                    (round(width * scale), round(height * scale)),
                    interpolation=cv2.INTER_AREA,
                )
            out = dest / path.relative_to(source).with_suffix(".jpg")
            out.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/default"))
    parser.add_argument("--faces", type=int, default=300, help="face close-ups to keep (0: all)")
    parser.add_argument("--flowers", type=int, default=300, help="flower photos to keep (0: all)")
    parser.add_argument(
        "--scenes", action="store_true", help="add the everyday scenes of color_scenes/"
    )
    parser.add_argument(
        "--repeat",
        action="append",
        default=[],
        metavar="SET=N",
        help="link a colour set N more times (drawn N+1 times as often), e.g. sunhays80_s384=4 "
        "(set_weights in a recipe does the same without links)",
    )
    parser.add_argument(
        "--shrink",
        type=Path,
        metavar="DEST",
        help="also write a copy shrunk to 144 px (JPEG q95) here",
    )
    args = parser.parse_args()
    shared, a, b = args.shared, args.out / "trainA", args.out / "trainB"
    rng = random.Random(0)
    counts = {}
    films = [
        shared / "oldfilm_video" / name for name in ("chaplin.mp4", "a-bomb_blast_effects_part.mp4")
    ]
    counts["film frames (extract)"] = film_frames(films, args.out / "films", a / "films")
    counts["damaged film frames"] = link_all(images(shared / "oldfilm_frames"), a / "rtn", "rtn")
    counts["old photos"] = link_all(images(shared / "oldphotos_ddcolor"), a / "photos", "old")
    # trainB by kind of picture (scenes, objects, people, flowers): the sets of set_weights.
    bsds = images(shared / "color_photos/bsds500/train") + images(
        shared / "color_photos/bsds500/val"
    )
    counts["bsds500 train+val"] = link_all(bsds, b / "scenes" / "bsds", "bsds")
    for name, kind in (
        ("imagenet_sample_s256", "objects"),
        ("sunhays80_s384", "scenes"),
        ("urban100_jpg", "scenes"),
    ):
        counts[name] = link_all(images(shared / "color_photos" / name), b / kind / name, name)
    if args.scenes:
        for name in SCENE_SETS:
            kind = "objects" if name in ("pacs_photo", "caltech101") else "scenes"
            counts[name] = link_all(images(shared / "color_scenes" / name), b / kind / name, name)
    faces = images(shared / "color_people/faces_nomask")
    rng.shuffle(faces)
    counts["faces"] = link_all(sorted(faces[: args.faces or None]), b / "people" / "faces", "face")
    people = [
        p
        for d in (
            "coco_person",
            "crowd_shanghaitechB",
            "deepface_tests",
            "groups_ultralight",
            "openpose_media",
        )
        for p in images(shared / "color_people" / d)
    ]
    counts["people"] = link_all(people, b / "people" / "people", "people")
    flowers = images(shared / "modern_color_flowers/flowers")
    rng.shuffle(flowers)
    counts["flowers"] = link_all(sorted(flowers[: args.flowers or None]), b / "flowers", "flower")
    for spec in args.repeat:
        name, _, times = spec.partition("=")
        found = [d for d in b.glob(f"*/{name}") if d.is_dir()] + (
            [b / name] if (b / name).is_dir() else []
        )
        if not found or not times.isdigit():
            sys.exit(f"prepare_default: --repeat {spec}: expected SET=N with SET a folder of {b}")
        for r in range(1, int(times) + 1):
            folder = found[0]
            counts[f"{name} again ({r})"] = link_all(
                images(folder), folder.with_name(f"{name}_rep{r}"), f"{name}_rep{r}"
            )
    for key, value in counts.items():
        print(f"{key:>24}: {value}")
    print(
        f"trainA: {len(images(a))} B&W images, trainB: {len(images(b))} colour images in {args.out}"
    )
    if args.shrink:
        print(f"{shrink_copy(args.out, args.shrink)} images shrunk to 144 px in {args.shrink}")


if __name__ == "__main__":
    main()
