"""Choose or make the demo's B&W sample clip (used by `make demo`).

With ../shared/data present, the sample is the real Chaplin short (B&W, MP3 sound), read
in place. Without it (a user's fresh clone), the project makes its own: a grainy, flickering
black-and-white film of a fractal zoom with a generated sound track, all from ffmpeg's
built-in sources, so nothing fetched from elsewhere is needed or committed.

    python pipelines/make_sample.py --shared ../shared/data --out demo_out
    # writes demo_out/sample_path.txt naming the clip to restore
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path


def make_synthetic(path: Path, seconds: float = 6.0) -> Path:
    """A 640x480, 24 fps B&W 'old film' with a soundtrack, made by ffmpeg alone."""
    video = (
        f"mandelbrot=size=640x480:rate=24:start_scale=2.5:end_scale=0.05,trim=duration={seconds},"
        "hue=s=0,eq=contrast=1.3:brightness=0.02,noise=alls=18:allf=t,vignette=PI/5,"
        "eq=brightness='0.03*sin(2*PI*t*3)':eval=frame"
    )
    audio = f"sine=frequency=220:duration={seconds},volume=0.3[a];anoisesrc=d={seconds}:c=pink:a=0.05[b];[a][b]amix=inputs=2"
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
            "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    real = args.shared / "oldfilm_video" / "chaplin.mp4"
    if real.is_file():
        sample = real.resolve()
        print(f"sample: the real Chaplin clip {sample}")
    else:
        sample = make_synthetic(args.out / "sample.mp4")
        print(f"sample: {sample} (made here: ../shared/data is absent)")
    (args.out / "sample_path.txt").write_text(str(sample))


if __name__ == "__main__":
    main()
