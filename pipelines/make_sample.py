"""The demo's sample film and its before/after/truth sheet (used by `make demo`).

The sample is made here from colour photographs that scikit-image ships inside its wheel (an
astronaut, a cat, coffee, a rocket, a motorcycle), so a fresh machine needs nothing else: a
640x360, 24 fps film that pans over each photo for 1.5 s (a cut between photos) with a sound
track, made black and white. The colour original is kept as the truth.

    python pipelines/make_sample.py --out demo_out            # demo_out/sample.mp4 + truth.mp4
    filmcolor restore demo_out/sample.mp4 demo_out/sample_color.mp4
    python pipelines/make_sample.py --out demo_out --sheet    # demo_out/before_after_truth.png
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 24
SHOT_FRAMES = 36  # 1.5 s a photo
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")


def photos() -> list[np.ndarray]:
    """The colour photos of scikit-image's data, RGB."""
    try:
        import skimage.data
    except ImportError:
        sys.exit("make_sample: the demo's photos come with scikit-image; pip install scikit-image")
    found = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        found.append(image[0] if isinstance(image, tuple) else image)
    return found


def pan(photo: np.ndarray, frames: int) -> list[np.ndarray]:
    """``frames`` 640x360 views sliding across ``photo`` (scaled to cover a little more)."""
    h, w = photo.shape[:2]
    scale = max(WIDTH * 1.25 / w, HEIGHT * 1.25 / h)
    big = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    bh, bw = big.shape[:2]
    views = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        x, y = round(t * (bw - WIDTH)), round((1 - t) * (bh - HEIGHT) / 2)
        views.append(np.ascontiguousarray(big[y : y + HEIGHT, x : x + WIDTH]))
    return views


def encode(frames: list[np.ndarray], path: Path, gray: bool) -> None:
    """Frames (RGB) into ``path`` with a sound track: x264 (gray: made B&W first), AAC."""
    seconds = len(frames) / FPS
    audio = (
        f"sine=frequency=220:duration={seconds},volume=0.3[a];"
        f"anoisesrc=d={seconds}:c=pink:a=0.05[b];[a][b]amix=inputs=2"
    )
    video = ["-vf", "hue=s=0"] if gray else []
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{WIDTH}x{HEIGHT}",
        "-r",
        str(FPS),
        "-i",
        "pipe:",
        "-f",
        "lavfi",
        "-i",
        audio,
        *video,
        "-c:v",
        "libx264",
        "-crf",
        "16",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(path),
    ]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)


def read_frames(path: Path, indices: list[int]) -> list[np.ndarray]:
    """Frames ``indices`` of a film, RGB."""
    from filmcolor.io.probe import probe
    from filmcolor.io.reader import FrameReader

    wanted, found = set(indices), {}
    with FrameReader(probe(path), pix_fmt="rgb24") as reader:
        for index, frame in enumerate(reader):
            if index in wanted:
                found[index] = frame.copy()
    return [found[i] for i in indices]


def sheet(out: Path) -> Path:
    """demo_out/before_after_truth.png: for the middle frame of each shot, gray | restored |
    truth."""
    from filmcolor.io.files import write_image

    middles = [shot * SHOT_FRAMES + SHOT_FRAMES // 2 for shot in range(len(PHOTOS))]
    columns = [
        read_frames(out / name, middles) for name in ("sample.mp4", "sample_color.mp4", "truth.mp4")
    ]
    height = 180
    rows = []
    for frames in zip(*columns, strict=True):
        small = [
            cv2.resize(f, (WIDTH * height // HEIGHT, height), interpolation=cv2.INTER_AREA)
            for f in frames
        ]
        gap = np.full((height, 6, 3), 255, np.uint8)
        rows.append(np.concatenate([small[0], gap, small[1], gap, small[2]], axis=1))
        rows.append(np.full((6, rows[-1].shape[1], 3), 255, np.uint8))
    label = np.full((28, rows[0].shape[1], 3), 255, np.uint8)
    third = (rows[0].shape[1] + 6) // 3
    for i, text in enumerate(
        ("black and white (input)", "filmcolor restore", "truth (the colour photo)")
    ):
        cv2.putText(
            label,
            text,
            (i * third + 8, 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.55,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return write_image(out / "before_after_truth.png", np.concatenate([label, *rows[:-1]], axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument(
        "--sheet", action="store_true", help="after the restore: write the before/after/truth sheet"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.sheet:
        print(f"before / after / truth: {sheet(args.out)}")
        return
    frames = [frame for photo in photos() for frame in pan(photo, SHOT_FRAMES)]
    encode(frames, args.out / "truth.mp4", gray=False)
    encode(frames, args.out / "sample.mp4", gray=True)
    print(
        f"sample: {args.out / 'sample.mp4'} ({len(frames)} frames, B&W, with sound); truth: "
        f"{args.out / 'truth.mp4'}"
    )


if __name__ == "__main__":
    main()
