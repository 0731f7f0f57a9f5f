"""restore-batch --cluster and extract --cluster on a real Ray cluster (``ray start``).

The cluster (a head and two worker nodes, one CPU each) runs in a network namespace of this
test module's own with only loopback up: Ray advertises the machine's interface address
otherwise, and nothing here may listen beyond loopback. Every process a test starts is
stopped by it, by its process id (each node's process group).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import decoded_frames, make_clip, md5_of_stream, run_ffmpeg, sha256

from filmcolor.cluster import (
    LocalCluster,
    enter_own_network,
    leave_own_network,
    node_processes,
)
from filmcolor.config import RestoreConfig
from filmcolor.errors import ClusterError
from filmcolor.restore.pipeline import restore

FILMCOLOR = [sys.executable, "-m", "filmcolor.cli"]
RAY = Path(sys.executable).parent / "ray"
PORT = 6379
ADDRESS = f"127.0.0.1:{PORT}"
SEGMENT = "0.4"  # seconds: 10 frames at 25 fps, several segments per film


@pytest.fixture(scope="module")
def own_network():
    """This thread (and every process it starts) in a network namespace with loopback only;
    back in the machine's own afterwards."""
    try:
        home = enter_own_network()
    except ClusterError as err:
        pytest.skip(str(err))
    try:
        yield
    finally:
        leave_own_network(home)


@pytest.fixture(scope="module")
def cluster(own_network):
    if not RAY.exists():
        pytest.skip("ray is not installed beside this Python (pip install 'filmcolor[cluster]')")
    nodes = LocalCluster(PORT)
    try:
        nodes.start("head", head=True)
        nodes.start("node1")
        nodes.start("node2")
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three short films with sound (b with a cut at 1.2 s) and a damaged one."""
    folder = tmp_path_factory.mktemp("films")
    make_clip(folder / "a.mp4", seconds=3.0)
    parts = folder / "parts"
    parts.mkdir()
    make_clip(parts / "one.mp4", seconds=1.2, audio=False)
    run_ffmpeg(
        "-f", "lavfi", "-i", "smptebars=size=96x64:rate=25:duration=1.2",
        "-vf", "hue=s=0", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        str(parts / "two.mp4"),
    )  # fmt: skip
    run_ffmpeg(
        "-i", str(parts / "one.mp4"), "-i", str(parts / "two.mp4"),
        "-f", "lavfi", "-i", "sine=frequency=330:duration=2.4",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(folder / "b.mkv"),
    )  # fmt: skip
    shutil.rmtree(parts)
    make_clip(folder / "c.mp4", seconds=2.0)
    (folder / "broken.mp4").write_bytes(b"\x00" * 4096)  # not a film
    return folder


GOOD = {"a.mp4": 75, "b.mkv": 60, "c.mp4": 50}


@pytest.fixture(scope="module")
def single_machine(films: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each film restored by one process on this machine, with the same segment length."""
    out = tmp_path_factory.mktemp("single")
    cfg = RestoreConfig(preset="ultrafast", segment_seconds=float(SEGMENT), jobs=1)
    for name in GOOD:
        restore(films / name, out / name, cfg)
    return out


def _frames_md5(path: Path) -> list[str]:
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines() if line[:1] != "#"]


def _batch(out: Path, *inputs: str | Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        *FILMCOLOR,
        "restore-batch",
        *map(str, inputs),
        "--out",
        str(out),
        "--cluster",
        ADDRESS,
        "--segment-seconds",
        SEGMENT,
        "--preset",
        "ultrafast",
        *extra,
    ]


def _manifest(out: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]
    return {Path(line["source"]).name: line for line in lines}


def _same_films(out: Path, films: Path, single: Path) -> None:
    for name, frames in GOOD.items():
        assert decoded_frames(out / name) == frames, name
        assert _frames_md5(out / name) == _frames_md5(single / name), f"{name}: frames differ"
        assert md5_of_stream(out / name) == md5_of_stream(films / name), f"{name}: sound kept"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "no work folder, partial file or lock left"


def test_without_ray_the_command_says_how_to_install_it(films: Path, tmp_path: Path):
    hide_ray = "import sys; sys.modules['ray'] = None; from filmcolor.cli import main; main()"
    cmd = [sys.executable, "-c", hide_ray, "restore-batch", str(films / "a.mp4")]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "out"), "--cluster", "auto"], capture_output=True, text=True
    )
    assert done.returncode == 13, done.stderr
    assert "pip install 'filmcolor[cluster]'" in done.stderr and "--cluster" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_nothing_imports_ray_without_cluster(films: Path, tmp_path: Path):
    code = (
        "import sys, atexit; atexit.register(lambda: print('ray' in sys.modules, file=sys.stderr))"
        "; import filmcolor.cluster, filmcolor.restore.distributed, filmcolor.extract.films"
        "; from filmcolor.cli import main; main()"
    )
    cmd = [sys.executable, "-c", code, "restore-batch", str(films / "c.mp4")]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path), "--preset", "ultrafast", "-q"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False"
    assert decoded_frames(tmp_path / "c.mp4") == 50


def test_an_address_nobody_answers_is_one_clear_line(films: Path, tmp_path: Path):
    cmd = _batch(tmp_path / "out", films / "a.mp4")
    cmd[cmd.index(ADDRESS)] = "127.0.0.1:9"  # discard: nothing listens there
    started = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 14, done.stderr
    assert "--cluster '127.0.0.1:9': no Ray cluster answers there" in done.stderr
    assert "ray start --head" in done.stderr and "Traceback" not in done.stderr
    assert time.time() - started < 30, "no minutes of retries"
    assert not (tmp_path / "out" / "a.mp4").exists()


def test_three_films_on_the_cluster_are_the_films_of_one_machine(
    cluster: LocalCluster, films: Path, single_machine: Path, tmp_path: Path
):
    """And the damaged film among them is reported while the others finish."""
    out = tmp_path / "out"
    done = subprocess.run(_batch(out, films), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _same_films(out, films, single_machine)
    lines = _manifest(out)
    assert lines["broken.mp4"]["status"] == "failed"
    assert "broken.mp4" in lines["broken.mp4"]["reason"]
    assert [lines[name]["segments"] for name in GOOD] == [8, 6, 5]
    assert "3 nodes" in done.stderr and "1 failed" in done.stderr
    assert not (out / "broken.mp4").exists()


def test_through_ray_client_from_outside_the_cluster(
    cluster: LocalCluster, films: Path, single_machine: Path, tmp_path: Path
):
    """ray://host:port: the driver is no node of the cluster (Ray Client, port 10001)."""
    out = tmp_path / "out"
    cmd = _batch(out, films / "c.mp4")
    cmd[cmd.index(ADDRESS)] = "ray://127.0.0.1:10001"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _frames_md5(out / "c.mp4") == _frames_md5(single_machine / "c.mp4")
    assert md5_of_stream(out / "c.mp4") == md5_of_stream(films / "c.mp4")


def _wait_for_segments(out: Path, count: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while len(list(out.glob(".*.filmcolor-work/seg_*.nut"))) < count:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "no segment landed"
        time.sleep(0.05)


def test_the_driver_killed_resume_does_not_redo_finished_segments(
    cluster: LocalCluster, films: Path, single_machine: Path, tmp_path: Path
):
    out = tmp_path / "out"
    good = [films / name for name in GOOD]
    cmd = _batch(out, *good, extra=("--resume", "-q"))
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    _wait_for_segments(out, 3, proc)
    proc.kill()  # kill -9: the driver has no chance to say anything
    proc.communicate(timeout=30)
    recorded = {}
    for job in out.glob(".*.filmcolor-work/job.json"):
        state = json.loads(job.read_text())
        recorded[job.parent.name[1:].split(".filmcolor")[0]] = len(state["segments"]) + len(
            state["ahead"]
        )
    assert sum(recorded.values()) >= 1, "segments were recorded before the kill"
    assert not any((out / name).exists() for name in GOOD if recorded.get(Path(name).stem, 0) < 5)
    done = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _same_films(out, films, single_machine)
    lines = _manifest(out)
    for name in GOOD:
        if lines[name]["status"] == "skipped":
            continue  # finished and joined before the kill
        assert lines[name]["resumed"] == recorded.get(Path(name).stem, 0), name
    total = sum(lines[name].get("segments", 0) - lines[name].get("resumed", 0) for name in GOOD)
    assert f"{total} segments restored" in done.stderr, "only the missing segments ran"


def test_a_film_with_its_own_start_is_restored_whole_by_one_task(
    cluster: LocalCluster, films: Path, tmp_path: Path
):
    """A per-film start (a .csv list) cannot be cut into segments: one task runs restore."""
    listing = tmp_path / "films.csv"
    listing.write_text(f"film,start,duration\n{films / 'b.mkv'},0.6,1.2\n")
    out = tmp_path / "out"
    done = subprocess.run(_batch(out, listing), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    here = tmp_path / "here.mkv"
    cfg = RestoreConfig(preset="ultrafast", segment_seconds=float(SEGMENT), start=0.6, duration=1.2)
    restore(films / "b.mkv", here, cfg)
    assert decoded_frames(out / "b.mkv") == 30
    assert _frames_md5(out / "b.mkv") == _frames_md5(here)
    assert "segments" not in _manifest(out)["b.mkv"], "restored whole"


def test_extract_on_the_cluster_writes_the_frames_of_one_machine(
    cluster: LocalCluster, films: Path, tmp_path: Path
):
    here, there = tmp_path / "here", tmp_path / "there"
    for out, extra in ((here, ()), (there, ("--cluster", ADDRESS))):
        cmd = [*FILMCOLOR, "extract", str(films), "--out", str(out), "--size", "48", *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "broken.mp4" in done.stderr and "3 films (0 already done, 1 failed)" in done.stderr

    def images(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): sha256(p)
            for p in root.rglob("*")
            if p.is_file() and p.suffix != ".jsonl"
        }

    assert images(there) == images(here) and len(images(here)) >= 6
    assert not (there / ".staging").exists()


def test_a_node_lost_mid_run_the_films_complete_the_same(
    cluster: LocalCluster, films: Path, single_machine: Path, tmp_path: Path
):
    """Runs last: it stops a node of the module's cluster. The kill must come while one of
    node2's workers writes a segment; where Ray happened to give node2 nothing before the batch
    ended (a loaded machine), the batch runs again into a new folder, three times at most."""
    node2 = cluster.nodes["node2"].pid
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        proc = subprocess.Popen(
            _batch(out, *(films / name for name in GOOD), extra=("-q",)),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        caught = False
        while proc.poll() is None and time.time() < deadline:
            # A segment being written by one of node2's workers (.part_seg_N.HOST-PID.nut).
            writers = {
                int(part.name.rsplit("-", 1)[1].split(".")[0])
                for part in out.glob(".*.filmcolor-work/.part_seg_*.nut")
            }
            if writers and writers & set(node_processes(node2)):
                caught = True
                break
            time.sleep(0.02)
        if caught:
            break
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    assert caught, "node2 wrote no segment in three batches"
    cluster.kill("node2")  # the machine is gone mid-segment: raylet, workers and their ffmpeg
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    _same_films(out, films, single_machine)
