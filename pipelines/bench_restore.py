"""Restore speed and memory against a plain transcode and the naive way, measured side by side.

    python pipelines/bench_restore.py                      # 720p synthetic + a real 720p clip, CPU
    python pipelines/bench_restore.py --seconds 8 --repeat 1 --naive-frames 40 --device both

For each 720p clip (synthetic lavfi content with audio; the PySceneDetect test video from
../shared/data made gray), all in one run, on this machine:
- `transcode`: plain ffmpeg decode + encode with restore's encoder settings (libx264 CRF 18,
  preset medium, audio copied), no model: the physical limit of the pipeline (ratio 1.0);
- the same transcode of restore's (colour) output: x264 spends more on colour than on the gray
  input, so this is the limit of any colorizer with this encoder, and restore's ratio to it;
- `restore` with default settings (temporal blending with automatic keyframes, the int8 model
  on a CPU, --jobs auto: segments in parallel processes on CPUs of 8 cores or more, one with
  the model on a GPU), and without the levers as variants (--keyframe-interval 1, --temporal
  none, and --precision fp32), each as fps and ratio to the transcode;
- `naive`: the same model in PyTorch eager, one frame at a time, frames written to PNG files by
  ffmpeg, read back, colorized, written to PNG and encoded again (as the seed and most
  colorizers do) on the first --naive-frames frames (the same architecture with its own
  weights: only the speed is compared); restore's ratio to it;
- the time share of decode, model, temporal blending and encode in a default restore (model
  and temporal as CPU time of their threads: they overlap each other and the encoder);
- peak resident memory (restore's process plus its ffmpeg children) for a --memory-seconds
  synthetic clip and for one --long-factor times longer: the ratio must stay <= 1.1;
- the ceiling of restore's own work (--ceiling yes|only): restore with a free model (one 1x1
  convolution) and x264 ultrafast against an ultrafast transcode, with and without the
  temporal stage: what reading, shrinking, flow, blending and writing allow when the model and
  the encoder cost little, as on a GPU machine with many cores (the GPU goal is 0.9x);
- with --jobs N, restore --jobs N (the film's segments in N worker processes) as one more row
  of each table; where --jobs auto is more than 1, a restore --jobs 1 row beside it;
  --rows default keeps only these rows (a short run on a lent GPU machine);
- `restore --repair` (the default repairs) and, on the real clip, `restore --reference` with
  the colour frame at each shot's start given, as rows of the table, with repair's steps' time;
- `filmcolor shots` on a --shots-seconds long 720p film (the real clip looped) against decoding
  it with ffmpeg.
The clips are 20 s long (a film's throughput, not restore's fixed cost of about half a second
for probing, the model's first run and the final mux, which weighs 10-15% on a clip of 8 s);
the transcode and the default restore are run --repeat times, alternating, and their medians
compared: on a shared 2-core machine single runs vary by +-15%.
With --device both on a machine with a GPU, the restore rows, the naive way (PyTorch eager on
the device), the time shares and the memory check are measured on CPU and on CUDA.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from filmcolor.restore.pool import auto_jobs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def synthetic_clip(path: Path, seconds: float) -> Path:
    """720p25 gray moving content (testsrc2 + mandelbrot halves) with a 440 Hz AAC track."""
    graph = (
        f"testsrc2=s=640x720:r=25:d={seconds}[a];mandelbrot=s=640x720:r=25,trim=duration={seconds},"
        "setpts=PTS-STARTPTS[b];[a][b]hstack,hue=s=0,format=yuv420p[v]"
    )
    ffmpeg(
        "-filter_complex",
        graph,
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}",
        "-map",
        "[v]",
        "-map",
        "0:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-c:a",
        "aac",
        str(path),
    )
    return path


def real_clip(path: Path, seconds: float) -> Path | None:
    source = SHARED / "colorvideo_gt" / "pyscenedetect_testvideo.mp4"
    if not source.is_file():
        return None
    ffmpeg(
        "-t",
        str(seconds),
        "-i",
        str(source),
        "-vf",
        "hue=s=0,format=yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-an",
        str(path),
    )
    return path


def shot_references(seconds: float, folder: Path) -> Path | None:
    """The colour frame at the start of each shot of the real clip's source, as pictures (what
    a colourist gives restore --reference)."""
    from filmcolor.config import SceneConfig
    from filmcolor.io.probe import probe
    from filmcolor.io.reader import FrameReader
    from filmcolor.scenes import detect_scenes

    source = SHARED / "colorvideo_gt" / "pyscenedetect_testvideo.mp4"
    if not source.is_file():
        return None
    folder.mkdir(exist_ok=True)
    info = probe(source)
    for scene in detect_scenes(source, SceneConfig()):
        if scene.start_time >= seconds:
            break
        with FrameReader(info, pix_fmt="rgb24", start=scene.start_time + 0.001, duration=0.2) as r:
            frame = r.read()
        cv2.imwrite(str(folder / f"shot_{scene.index}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def shots_speed(seconds: float, work: Path) -> str | None:
    """`filmcolor shots` on a long 720p film (the real clip looped, gray) against decoding it."""
    source = SHARED / "colorvideo_gt" / "pyscenedetect_testvideo.mp4"
    if not source.is_file():
        return None
    film = work / "long_gray.mp4"
    ffmpeg(
        "-stream_loop", "-1", "-t", str(seconds), "-i", str(source), "-vf", "hue=s=0",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-an", str(film),
    )  # fmt: skip
    start = time.perf_counter()
    ffmpeg("-i", str(film), "-f", "null", "-")
    decode = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "filmcolor.cli", "shots", str(film), "--out", str(work / "shots"),
         "-q", "--overwrite"],
        check=True,
    )  # fmt: skip
    shots = time.perf_counter() - start
    ratio = shots / decode
    return (
        f"filmcolor shots on a {seconds / 60:g}-minute 720p film: {shots:.1f} s, decoding it "
        f"{decode:.1f} s: {ratio:.2f}x (goal <= 2): {'PASS' if ratio <= 2 else 'MISS'}"
    )


def frame_count(path: Path) -> int:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().split(",")[0])


def transcode_seconds(clip: Path, out: Path, preset: str = "medium") -> float:
    start = time.perf_counter()
    ffmpeg(
        "-i",
        str(clip),
        "-map",
        "0",
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-preset",
        preset,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "copy",
        str(out),
    )
    return time.perf_counter() - start


def decode_seconds(clip: Path) -> float:
    """Decoding into a pipe in restore's frame format, read by Python (restore's reader)."""
    from filmcolor.io.probe import probe
    from filmcolor.io.reader import FrameReader

    start = time.perf_counter()
    with FrameReader(probe(clip)) as reader:
        frames = sum(1 for _ in reader)
    if frames == 0:
        raise SystemExit(f"no frame decoded from {clip}")
    return time.perf_counter() - start


def restore_child(args: list[str]) -> None:
    """Runs in a child process: one restore, then its numbers as JSON on stdout."""
    clip, out, device, temporal, keyframes, model, preset, jobs, repair, references = args
    from filmcolor.config import RepairConfig, RestoreConfig, TemporalConfig, parse_repairs
    from filmcolor.restore.pipeline import restore

    interval = 0 if keyframes == "auto" else int(keyframes)
    precision = "fp32" if temporal.endswith("-fp32") else "auto"
    temporal_cfg = TemporalConfig(mode=temporal.removesuffix("-fp32"), keyframe_interval=interval)
    cfg = RestoreConfig(
        model=None if model == "-" else Path(model),
        device=device,
        overwrite=True,
        temporal=temporal_cfg,
        precision=precision,
        preset=preset,
        jobs=int(jobs),
        segment_seconds=None,
        repair=RepairConfig(steps=parse_repairs(None if repair == "-" else repair)),
        references=() if references == "-" else (Path(references),),
    )
    result = restore(Path(clip), Path(out), cfg)
    print(
        json.dumps(
            {
                "seconds": result.seconds,
                "frames": result.frames,
                "device": result.device,
                "model": result.model_seconds,
                "temporal": result.temporal_seconds,
                "model_frames": result.model_frames,
                "repair": result.repair_seconds,
                "rss_mb": (
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                    + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                )
                / 1024,
            }
        )
    )


def run_restore(
    clip: Path,
    out: Path,
    device: str = "cpu",
    temporal: str = "flow",
    keyframes: str = "auto",
    model: Path | None = None,
    preset: str = "medium",
    jobs: int = 0,
    repair: str = "-",
    references: Path | None = None,
) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(clip),
            str(out),
            device,
            temporal,
            keyframes,
            str(model) if model else "-",
            preset,
            str(jobs),
            repair,
            str(references) if references else "-",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"restore failed on {clip}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_model(path: Path) -> Path:
    """A generator that costs nothing: one 1x1 convolution (constant colour), the default
    model's contract (working size), so restore does all its own work around it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from filmcolor.restore.colorizer import Colorizer

    contract = Colorizer(device="cpu").contract
    weight, bias = np.zeros((2, 1, 1, 1), np.float32), np.array([0.1, -0.1], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["luma", "w", "b"], ["chroma"], kernel_shape=[1, 1])],
        "free",
        [helper.make_tensor_value_info("luma", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("chroma", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"filmcolor": contract.to_json()})
    onnx.save(model, str(path))
    return path


def ceiling(clips: dict[str, Path], work: Path, repeat: int, jobs: int = 0) -> None:
    """Restore with a free model and x264 ultrafast against an ultrafast transcode: how fast
    restore's own per-frame work (reading, shrinking, flow, blending, writing) lets it go
    when the model and the encoder cost little, as on a GPU machine with many cores."""
    model = free_model(work / "free.onnx")
    print(
        "\nCeiling of restore's own work (a free model: one 1x1 convolution; x264 ultrafast for "
        "both; "
        f"medians of {repeat}):\n"
    )
    runs_of = [("flow", "auto", 1), ("none", "1", 1)] + (
        [("flow", "auto", jobs)] if jobs > 1 else []
    )
    heads = ["restore --temporal flow", "restore --temporal none"] + (
        [f"restore --jobs {jobs}"] if jobs > 1 else []
    )
    print("| clip | transcode fps | " + " | ".join(f"{h} fps (x transcode)" for h in heads) + " |")
    print("|---|---|" + "---|" * len(heads))
    for name, clip in clips.items():
        frames = frame_count(clip)
        transcode = statistics.median(
            transcode_seconds(clip, work / "t.mp4", "ultrafast") for _ in range(repeat)
        )
        cells = []
        for temporal, keyframes, n in runs_of:
            runs = [
                run_restore(clip, work / "r.mp4", "cpu", temporal, keyframes, model, "ultrafast", n)
                for _ in range(repeat)
            ]
            fps = frames / statistics.median(r["seconds"] for r in runs)
            cells.append(f"{fps:.0f} ({fps * transcode / frames:.2f})")
        print(f"| {name} | {frames / transcode:.0f} | " + " | ".join(cells) + " |", flush=True)


def naive_seconds(
    clip: Path, work: Path, frames: int, device: str = "cpu"
) -> tuple[float, int] | None:
    """The seed's way: PNG frames out, PyTorch eager one frame at a time, PNG frames in, encode."""
    try:
        import torch

        from filmcolor.config import GeneratorConfig
        from filmcolor.restore.colorizer import Colorizer, working_shape
        from filmcolor.training.networks import build_generator
    except ImportError:
        return None
    engine = Colorizer(device="cpu")
    net = build_generator(GeneratorConfig(**engine.contract.generator)).eval().to(device)
    frames_in, frames_out = work / "naive_in", work / "naive_out"
    frames_in.mkdir(exist_ok=True)
    frames_out.mkdir(exist_ok=True)
    start = time.perf_counter()
    ffmpeg("-i", str(clip), "-frames:v", str(frames), str(frames_in / "%06d.png"))
    files = sorted(frames_in.glob("*.png"))
    with torch.inference_mode():
        for path in files:
            bgr = cv2.imread(str(path))
            ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb).astype(np.float32) / 127.5 - 1.0
            h, w = ycc.shape[:2]
            sh, sw = working_shape(h, w, engine.working_size, engine.contract.size_multiple)
            small = cv2.resize(ycc[..., 0], (sw, sh), interpolation=cv2.INTER_AREA)
            chroma = (
                net(torch.from_numpy(small)[None, None].to(device))[0]
                .cpu()
                .numpy()
                .transpose(1, 2, 0)
            )
            chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
            ycc[..., 1], ycc[..., 2] = chroma[..., 1], chroma[..., 0]
            out = cv2.cvtColor(
                np.clip((ycc + 1.0) * 127.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR
            )
            cv2.imwrite(str(frames_out / path.name), out)
    ffmpeg(
        "-framerate",
        "25",
        "-i",
        str(frames_out / "%06d.png"),
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-preset",
        "medium",
        "-pix_fmt",
        "yuv420p",
        str(work / "naive.mp4"),
    )
    return time.perf_counter() - start, len(files)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        restore_child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the clips")
    parser.add_argument(
        "--shots-seconds",
        type=float,
        default=180.0,
        help="length of the film filmcolor shots is timed on (0: skip)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of the transcode and the default restore (median)",
    )
    parser.add_argument(
        "--memory-seconds", type=float, default=8.0, help="length of the short memory clip"
    )
    parser.add_argument("--naive-frames", type=int, default=50)
    parser.add_argument("--long-factor", type=int, default=8)
    parser.add_argument("--device", choices=["cpu", "cuda", "both"], default="cpu")
    parser.add_argument("--no-memory", action="store_true", help="skip the long clip")
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="also measure restore --jobs N (segments in N parallel processes)",
    )
    parser.add_argument(
        "--rows",
        choices=["all", "default"],
        default="all",
        help=(
            "default: only the default restore (and --jobs rows) beside the transcode and the "
            "naive way"
        ),
    )
    parser.add_argument(
        "--ceiling",
        choices=["yes", "no", "only"],
        default="yes",
        help="also (or only) measure restore with a free model and x264 ultrafast",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (the clips and the outputs)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="filmcolor-bench-"))
    try:
        run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    """Every measurement of ``args``, with its clips and outputs in ``work``."""
    devices = ["cpu", "cuda"] if args.device == "both" else [args.device]
    clips = {"synthetic 720p": synthetic_clip(work / "synthetic.mp4", args.seconds)}
    references = shot_references(args.seconds, work / "references")
    if (real := real_clip(work / "real.mp4", args.seconds)) is not None:
        clips["real 720p (cuts video, gray)"] = real
    print(
        f"machine: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
        f"cores; "
        f"clips {args.seconds:g} s, work folder {work}"
        f"{' (kept)' if args.keep else ' (removed at the end; --keep keeps it)'}\n"
    )
    if args.ceiling == "only":
        ceiling(clips, work, args.repeat, args.jobs)
        return
    print("| clip | run | fps | x transcode | x naive | model frames |")
    print("|---|---|---|---|---|---|")
    shares = {}
    repairs: dict[str, dict] = {}
    goals: list[str] = []
    for name, clip in clips.items():
        frames = frame_count(clip)
        # The transcode and the default restore, alternating, --repeat times: medians.
        transcodes, defaults = [], {}
        for _ in range(args.repeat):
            transcodes.append(transcode_seconds(clip, work / "transcode.mp4"))
            for device in devices:
                run = run_restore(clip, work / "restored.mp4", device)
                defaults.setdefault(device, []).append(run)
        transcode_fps = frames / statistics.median(transcodes)
        # The same transcode of restore's own output: x264 spends more on a colour picture than
        # on the gray input, a cost any colorizer with this encoder pays on top of the transcode.
        colour_fps = frames / statistics.median(
            transcode_seconds(work / "restored.mp4", work / "colour.mp4")
            for _ in range(args.repeat)
        )
        decode = decode_seconds(clip)
        naives = {
            device: naive_seconds(clip, work, args.naive_frames, device) for device in devices
        }
        print(
            f"| {name} | plain ffmpeg transcode (median of {len(transcodes)}: "
            f"{', '.join(f'{t:.1f}' for t in transcodes)} s) | {transcode_fps:.1f} | 1.00 | – | – "
            f"|"
        )
        print(
            f"| {name} | the same transcode of restore's colour output (any colorizer's limit with "
            f"this encoder) | {colour_fps:.1f} | {colour_fps / transcode_fps:.3f} | – | – "
            f"|"
        )
        for device, naive in naives.items():
            if naive:
                print(
                    f"| {name} | naive (PyTorch eager, PNG files, {naive[1]} frames) [{device}] | "
                    f"{naive[1] / naive[0]:.2f} | {naive[1] / naive[0] / transcode_fps:.3f} | 1.0 "
                    f"| all |"
                )
        for device in devices:
            auto = auto_jobs(device)
            variants = [
                (
                    f"restore (defaults: flow, keyframes auto, int8 on cpu, jobs auto = {auto})",
                    "flow",
                    "auto",
                )
            ]
            if args.rows == "all":
                variants += [
                    ("restore --keyframe-interval 1", "flow", "1"),
                    ("restore --temporal none", "none", "1"),
                    ("restore --temporal none --precision fp32", "none-fp32", "1"),
                ]
            for jobs in sorted({args.jobs, 1} - {0, auto}):
                variants.append((f"restore --jobs {jobs}", "flow", f"jobs{jobs}"))
            variants.append(
                ("restore --repair (deflicker, dust, scratches, degrain)", "flow", "repair")
            )
            if name.startswith("real") and references is not None:
                variants.append(
                    (
                        "restore --reference (the colour frame at each shot's start)",
                        "flow",
                        "reference",
                    )
                )
            naive = naives[device]
            naive_fps = naive[1] / naive[0] if naive else None
            for label, temporal, keyframes in variants:
                if (temporal, keyframes) == ("flow", "auto"):
                    runs = sorted(defaults[device], key=lambda run: run["seconds"])
                    r = runs[len(runs) // 2]  # the median run
                    label += (
                        f" (median of {len(runs)}: "
                        + ", ".join(f"{x['seconds']:.1f}" for x in defaults[device])
                        + " s)"
                    )
                elif keyframes == "reference":
                    r = run_restore(clip, work / "restored.mp4", device, references=references)
                    ratio = r["frames"] / r["seconds"] / transcode_fps
                    goals.append(
                        f"{name} [{r['device']}]: restore --reference / transcode {ratio:.2f} "
                        f"(goal >= 0.5): {'PASS' if ratio >= 0.5 else 'MISS'}"
                    )
                elif keyframes == "repair":
                    r = run_restore(clip, work / "restored.mp4", device, repair="")
                    ratio = r["frames"] / r["seconds"] / transcode_fps
                    goals.append(
                        f"{name} [{r['device']}]: restore --repair / transcode {ratio:.2f} (goal "
                        f">= 0.35): {'PASS' if ratio >= 0.35 else 'MISS'}"
                    )
                    repairs[f"{name} [{r['device']}]"] = r
                elif keyframes.startswith("jobs"):
                    r = run_restore(
                        clip,
                        work / "restored.mp4",
                        device,
                        temporal,
                        "auto",
                        jobs=int(keyframes[4:]),
                    )
                else:
                    r = run_restore(clip, work / "restored.mp4", device, temporal, keyframes)
                fps = r["frames"] / r["seconds"]
                vs_naive = f"{fps / naive_fps:.1f}" if naive_fps else "–"
                print(
                    f"| {name} | {label} [{r['device']}] | {fps:.1f} | {fps / transcode_fps:.3f} | "
                    f"{vs_naive} | "
                    f"{r['model_frames']}/{r['frames']} |",
                    flush=True,
                )
                if keyframes == "auto" and temporal == "flow":
                    ratio = fps / transcode_fps
                    target = 0.5 if device == "cpu" else 0.9
                    verdict = (
                        "PASS"
                        if ratio >= target
                        else (
                            "milestone 0.25 PASS" if device == "cpu" and ratio >= 0.25 else "MISS"
                        )
                    )
                    goals.append(
                        f"{name} [{r['device']}]: restore / transcode {ratio:.2f} (goal >= "
                        f"{target}): {verdict}; "
                        f"restore / colour transcode {fps / colour_fps:.2f}"
                    )
                    if naive_fps and device != "cpu":
                        goals.append(
                            f"{name} [{r['device']}]: restore / naive {fps / naive_fps:.1f} (goal "
                            f">= 5): "
                            f"{'PASS' if fps / naive_fps >= 5 else 'MISS'}"
                        )
                    shares[f"{name} [{r['device']}]"] = (r, decode, frames / transcode_fps)
    print(
        "\nTime shares of a default restore (decode and encode: their plain ffmpeg times; "
        "model and temporal: CPU seconds of the threads doing them; each as a share of "
        "restore's wall time):\n"
    )
    print("| clip | wall | decode | model | temporal | encode (transcode - decode) |")
    print("|---|---|---|---|---|---|")
    for name, (r, decode, transcode) in shares.items():
        wall = r["seconds"]
        encode = max(0.0, transcode - decode)
        cells = [f"{v:.1f} s ({v / wall:.0%})" for v in (decode, r["model"], r["temporal"], encode)]
        print(f"| {name} | {wall:.1f} s | " + " | ".join(cells) + " |")
        share = r["temporal"] / wall
        goals.append(
            f"{name}: temporal stage {share:.0%} of restore (goal <= 25%): "
            f"{'PASS' if share <= 0.25 else 'MISS'}"
        )
    if repairs:
        print(
            "\nRepair's steps in restore --repair (CPU seconds of each, as a share of the run's "
            "wall time):\n"
        )
        steps = sorted({step for r in repairs.values() for step in r["repair"]})
        print("| clip | wall | " + " | ".join(steps) + " |")
        print("|---|---|" + "---|" * len(steps))
        for name, r in repairs.items():
            wall = r["seconds"]
            cells = [
                f"{r['repair'].get(s, 0.0):.1f} s ({r['repair'].get(s, 0.0) / wall:.0%})"
                for s in steps
            ]
            print(f"| {name} | {wall:.1f} s | " + " | ".join(cells) + " |")
    if not args.no_memory:
        short_clip = synthetic_clip(work / "short.mp4", args.memory_seconds)
        long_clip = synthetic_clip(work / "long.mp4", args.memory_seconds * args.long_factor)
        print()
        for device in devices:
            short = run_restore(short_clip, work / "restored.mp4", device)
            long = run_restore(long_clip, work / "restored_long.mp4", device)
            ratio = long["rss_mb"] / short["rss_mb"]
            print(
                f"Peak resident memory (restore + ffmpeg children) [{long['device']}]: "
                f"{args.memory_seconds:g} s "
                f"clip {short['rss_mb']:.0f} MB, {args.memory_seconds * args.long_factor:g} s "
                f"clip "
                f"{long['rss_mb']:.0f} MB: ratio {ratio:.2f} "
                f"({'PASS' if ratio <= 1.1 else 'MISS'} <= 1.1)"
            )
    if args.ceiling == "yes":
        ceiling(clips, work, args.repeat, args.jobs)
    if args.shots_seconds and (line := shots_speed(args.shots_seconds, work)) is not None:
        goals.append(line)
    print("\nGoals:\n" + "\n".join(f"- {g}" for g in goals))


if __name__ == "__main__":
    main()
