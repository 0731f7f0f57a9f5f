"""Throughput of restore-batch on a local Ray cluster against one machine, measured side by side.

    python pipelines/bench_cluster.py                         # 4 films of 10 s, 480x360
    python pipelines/bench_cluster.py --films 6 --seconds 20 --size 640x480 --segment-seconds 5

Run as root: the script puts itself in a network namespace of its own with only loopback up
(Ray advertises the machine's interface address otherwise) and starts the Ray nodes there with
``ray start`` (``--num-cpus 1`` each), stopping them by process id at the end. A batch of
synthetic gray films with sound (moving test patterns and a cut in each) is restored, all in
one run, by:

- `one after another`: ``filmcolor restore`` film after film, one process (the default
  ``--jobs auto``, which is one process on 2 cores);
- `restore-batch`: ``filmcolor restore-batch`` without ``--cluster`` (the same, in one process);
- `cluster, head + N`: ``restore-batch --cluster`` on a head and N worker nodes of one CPU
  each, segments of ``--segment-seconds``;

and prints frames per second and each row's ratio to `one after another`, the films' ready
times on the cluster (the first film is ready long before the last), the driver's CPU time per
segment and the stream-copy join's time per film: the figures docs/cluster.md's model of an
archive at scale starts from.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from filmcolor.cluster import LocalCluster, enter_own_network

FILMCOLOR = [sys.executable, "-m", "filmcolor.cli"]
CONNECT = "import sys; from filmcolor.cluster import Cluster; Cluster.connect(sys.argv[1]).close()"


def make_film(path: Path, seconds: float, size: str, seed: int) -> Path:
    """A gray film with sound: testsrc2 then a cut to mandelbrot at half time."""
    half = seconds / 2
    graph = (
        f"testsrc2=s={size}:r=25:d={half}[a];"
        f"mandelbrot=s={size}:r=25:start_scale={0.2 + 0.1 * seed},trim=duration={half},"
        f"setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1:a=0,hue=s=0,format=yuv420p[v]"
    )
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-filter_complex", graph, "-f", "lavfi",
         "-i", f"sine=frequency={220 + 110 * seed}:duration={seconds}", "-map", "[v]", "-map",
         "0:a", "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, the children's CPU seconds, and stderr of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {done.stderr[-2000:]}")
    return (
        wall,
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        done.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--films", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="480x360")
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--workers", default="1,2", help="worker nodes beside the head, per row")
    parser.add_argument("--json", type=Path, help="write the measurements here too")
    args = parser.parse_args()

    enter_own_network()
    work = Path(tempfile.mkdtemp(prefix="bench_cluster"))
    films = work / "films"
    films.mkdir()
    paths = [
        make_film(films / f"reel{i}.mp4", args.seconds, args.size, i) for i in range(args.films)
    ]
    frames = round(args.seconds * 25) * len(paths)
    common = ["--preset", "medium", "-q"]
    rows: list[tuple[str, float, str]] = []

    out = work / "sequential"
    out.mkdir()
    started = time.perf_counter()
    for path in paths:
        timed([*FILMCOLOR, "restore", str(path), str(out / path.name), *common])
    sequential = time.perf_counter() - started
    rows.append(("one after another (filmcolor restore)", sequential, ""))

    wall, _, _ = timed([*FILMCOLOR, "restore-batch", str(films), "--out", str(work / "batch"),
                        *common])  # fmt: skip
    rows.append(("restore-batch, this machine", wall, ""))

    ready: dict[str, list[float]] = {}
    driver_total: list[tuple[float, int]] = []
    driver_start: list[float] = []
    marginal: list[float] = []
    for workers in [int(n) for n in args.workers.split(",") if n]:
        nodes = LocalCluster(port=6379)
        try:
            nodes.start("head", head=True)
            for n in range(workers):
                nodes.start(f"node{n + 1}")
            out = work / f"cluster{workers}"
            cmd = [
                *FILMCOLOR,
                "restore-batch",
                str(films),
                "--out",
                str(out),
                "--cluster",
                nodes.address,
                "--segment-seconds",
                str(args.segment_seconds),
                *common,
            ]
            wall, driver_cpu, _ = timed(cmd)
            lines = [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]
            segments = sum(line["segments"] for line in lines)
            if not marginal:
                # The driver's cost of one more segment: the same batch in segments a quarter
                # as long (its fixed costs, the model's session and the films' probes, cancel).
                fine = work / f"cluster{workers}_fine"
                cmd[cmd.index(str(out))] = str(fine)
                cmd[cmd.index("--segment-seconds") + 1] = str(args.segment_seconds / 4)
                _, fine_cpu, _ = timed(cmd)
                fine_lines = (fine / "batch.jsonl").read_text().splitlines()
                more = sum(json.loads(line)["segments"] for line in fine_lines) - segments
                marginal.append((fine_cpu - driver_cpu) / more)
            # The driver's fixed cost: start, import, join the cluster, leave it.
            _, start_cpu, _ = timed([sys.executable, "-c", CONNECT, nodes.address])
        finally:
            nodes.stop()
        assert all(line["status"] == "done" for line in lines), lines
        driver_total.append((driver_cpu, segments))
        driver_start.append(start_cpu)
        ready[f"head + {workers}"] = sorted(line["ready_after"] for line in lines)
        rows.append((f"cluster, head + {workers} (1 CPU each)", wall, f"{segments} segments"))

    # The join of a film (stream copy of its segments and the sound) as the driver makes it.
    joins = []
    for path in sorted((work / "sequential").iterdir()):
        started = time.perf_counter()
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-c", "copy",
                        str(work / f"join{path.suffix}")], check=True)  # fmt: skip
        joins.append(time.perf_counter() - started)

    print(
        f"{len(paths)} films of {args.seconds:g} s, {args.size}, {frames} frames; "
        f"{os.cpu_count()} cores; segments of {args.segment_seconds:g} s on the cluster\n"
    )
    print("| run | seconds | frames/s | ratio to one after another | |")
    print("|---|---|---|---|---|")
    for name, wall, note in rows:
        print(f"| {name} | {wall:.1f} | {frames / wall:.2f} | {sequential / wall:.2f} | {note} |")
    print()
    for name, times in ready.items():
        print(f"films ready on the cluster ({name}): " + ", ".join(f"{t:.1f} s" for t in times))
    cpu, segments = driver_total[0]
    print(
        f"driver CPU (head + 1): {cpu:.1f} s for {len(paths)} films in {segments} segments "
        f"({statistics.median(driver_start):.1f} s of it to start and join the cluster); "
        f"{1000 * marginal[0]:.0f} ms for each segment more; "
        f"join (stream copy) of a film of {args.seconds:g} s: "
        f"{1000 * statistics.median(joins):.0f} ms"
    )
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [{"run": n, "seconds": w, "fps": frames / w} for n, w, _ in rows],
                    "ready": ready,
                    "driver_cpu": cpu,
                    "segments": segments,
                    "driver_start_cpu": statistics.median(driver_start),
                    "driver_cpu_per_segment": marginal[0],
                    "join_seconds": statistics.median(joins),
                    "frames": frames,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
