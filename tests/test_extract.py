"""extract.py: shots, sampling, crops, dedup, domains, resume, bad files, on synthetic and real
films."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_scenes import make_film

from filmcolor.cli import main
from filmcolor.config import ExtractConfig
from filmcolor.errors import VideoReadError
from filmcolor.extract.films import extract
from filmcolor.io.files import find_videos


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("films")
    make_film(folder / "bw_letterbox.mp4", gray=True, pad="pad=320:320:0:40", fade=True)
    (folder / "nested").mkdir()
    make_film(folder / "nested" / "colour.mkv")
    return folder


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_extract_two_domains_with_crop_shots_and_manifest(films: Path, tmp_path: Path):
    out = tmp_path / "data"
    summary = extract([films], out, ExtractConfig(test_fraction=0.0, size=120))
    assert summary.films == 2 and summary.shots == 6 and not summary.failed
    records = {
        Path(r["source"]).name: r
        for r in map(json.loads, (out / "films.jsonl").read_text().splitlines())
    }
    bw, colour = records["bw_letterbox.mp4"], records["colour.mkv"]
    assert (bw["domain"], colour["domain"]) == ("A", "B")
    assert bw["saturation"] < 1 < 6 < colour["saturation"]
    # Bars are measured on the candidate frames (1.5x the output size): exact to 2 px.
    expected = {"x": 0, "y": 40, "width": 320, "height": 240}
    assert all(abs(bw["crop"][k] - v) <= 2 for k, v in expected.items()), bw["crop"]
    assert colour["crop"] is None
    lines = _manifest(out)
    assert {line["domain"] for line in lines} == {"A", "B"}
    for line in lines:
        image = cv2.imread(str(out / line["image"]))
        assert min(image.shape[:2]) == 120 and abs(image.shape[1] - 160) <= 2  # cropped 4:3
        shot = line["shot"]
        assert (
            40 * shot + 6 <= line["frame"] < 40 * (shot + 1) - 6
        )  # inside its shot, away from cuts
        assert line["source_hash"] and line["time"] == pytest.approx(line["frame"] / 25, abs=1e-3)
    # The faded-in first shot of the B&W film keeps no black frame.
    first = [line for line in lines if line["domain"] == "A" and line["shot"] == 0]
    assert all(line["frame"] >= 6 for line in first)
    # The still third shot (colour bars) gives one frame, not three.
    assert sum(1 for line in lines if line["domain"] == "B" and line["shot"] == 2) == 1
    assert bw["dropped"].get("duplicate", 0) >= 1
    assert sorted(p.name for p in out.iterdir()) == [
        "films.jsonl",
        "manifest.jsonl",
        "trainA",
        "trainB",
    ]


def test_rerun_skips_done_films_and_corrupt_files_are_reported(films: Path, tmp_path: Path):
    out = tmp_path / "data"
    extract([films], out, ExtractConfig(test_fraction=0.0))
    before = sorted(p.name for p in out.rglob("*.jpg"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    summary = extract([films, broken], out, ExtractConfig(test_fraction=0.0))
    assert summary.skipped_done == 2 and summary.films == 0
    assert len(summary.failed) == 1 and "broken.mp4" in summary.failed[0]
    assert sorted(p.name for p in out.rglob("*.jpg")) == before
    assert len(_manifest(out)) == len(before)


def test_nothing_extractable_is_an_error(tmp_path: Path):
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"not a film at all" * 10)
    with pytest.raises(VideoReadError, match="no film could be extracted"):
        extract([broken], tmp_path / "out", ExtractConfig())
    assert not list((tmp_path / "out").rglob("*.jpg"))


def test_test_split_is_by_film_and_domain_can_be_forced(films: Path, tmp_path: Path):
    out = tmp_path / "data"
    extract([films], out, ExtractConfig(test_fraction=0.999, domain="bw", jobs=2))
    # each film goes wholly to the split its content hash draws: test unless the hash falls in
    # the top 0.1% (x264's output, hence the hash, can differ between machines)
    from filmcolor.extract.films import content_key, split_for

    expected = sorted({split_for(content_key(f), 0.999) + "A" for f in find_videos([films])})
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == expected
    sources = {line["source"] for line in _manifest(out)}
    assert len(sources) == 2


def test_find_videos_globs_and_folders(films: Path):
    assert len(find_videos([films])) == 2
    assert len(find_videos([str(films / "**" / "*.mkv")])) == 1


def test_cli_extract_summary(films: Path, tmp_path: Path):
    result = CliRunner().invoke(
        main, ["extract", str(films), "--out", str(tmp_path / "d"), "--per-shot", "1", "-q"]
    )
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(
        main, ["extract", str(tmp_path / "missing"), "--out", str(tmp_path / "d")]
    )
    assert bad.exit_code == 2 and "does not exist" in bad.stderr


def test_real_films_go_to_their_domains(shared_data: Path, tmp_path: Path):
    out = tmp_path / "real"
    extract(
        [
            shared_data / "oldfilm_video",
            shared_data / "colorvideo_gt" / "pyscenedetect_testvideo.mp4",
        ],
        out,
        ExtractConfig(test_fraction=0.0),
    )
    records = {
        Path(r["source"]).name: r
        for r in map(json.loads, (out / "films.jsonl").read_text().splitlines())
    }
    assert (
        records["chaplin.mp4"]["domain"] == "A" and records["chaplin.mp4"]["crop"]["x"] > 60
    )  # pillarbox
    assert records["a-bomb_blast_effects_part.mp4"]["domain"] == "A"
    assert records["pyscenedetect_testvideo.mp4"]["domain"] == "B"
    assert records["pyscenedetect_testvideo.mp4"]["shots"] >= 4


def test_sepia_film_counts_as_bw(tmp_path: Path):
    sepia = make_film(
        tmp_path / "sepia.mp4",
        gray=True,
        pad="colorchannelmixer=.393:.769:.189:0:.349:.686:.168:0:.272:.534:.131",
    )
    extract([sepia], tmp_path / "out", ExtractConfig(test_fraction=0.0))
    record = json.loads((tmp_path / "out" / "films.jsonl").read_text())
    assert record["domain"] == "A", record["saturation"]
    image = cv2.imread(str(next((tmp_path / "out" / "trainA").glob("*.jpg"))))
    assert (
        abs(float(image[..., 2].mean()) - float(image[..., 0].mean())) > 10
    )  # it really is tinted


def test_a_film_killed_halfway_is_finished_by_the_rerun(films: Path, tmp_path: Path):
    import subprocess
    import sys
    import time

    out = tmp_path / "data"
    film = sorted(films.iterdir())[0]
    cmd = [
        sys.executable,
        "-m",
        "filmcolor",
        "extract",
        str(film),
        "--out",
        str(out),
        "--test-fraction",
        "0",
        "-q",
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / ".staging").rglob("*.npy")):
        time.sleep(0.02)
    proc.kill()  # kill -9 while the film's candidates are being staged
    proc.wait(timeout=30)
    assert not list(out.glob("train*/*.jpg")), "nothing of the killed film is in the data set yet"
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    reference = tmp_path / "reference"
    subprocess.run([*cmd[:6], str(reference), *cmd[7:]], check=True)
    assert sorted(p.name for p in out.rglob("*.jpg")) == sorted(
        p.name for p in reference.rglob("*.jpg")
    )
    assert not (out / ".staging").exists()
    assert len(_manifest(out)) == len(_manifest(reference))


def test_decoding_starts_before_the_probe_and_a_wrong_guess_is_redone(
    films: Path, tmp_path: Path, monkeypatch
):
    """ffmpeg starts from OpenCV's guess of the size while ffprobe runs; when the guess is
    wrong (forced here) the reader is restarted from the probe, and the frames come out the
    same. OpenCV reports a rotated film's size upright, as the probe does."""
    import filmcolor.extract.films as extract_module
    from filmcolor.io.probe import guess_size, probe
    from filmcolor.io.reader import SplitFrameReader

    film = films / "nested" / "colour.mkv"
    assert guess_size(film) == (320, 240, 25.0)
    assert guess_size(tmp_path / "missing.mp4") is None
    rotated = tmp_path / "rotated.mp4"
    run = __import__("subprocess").run
    run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(film),
            "-c",
            "copy",
            "-metadata:s:v",
            "rotate=90",
            str(rotated),
        ],
        check=True,
    )
    assert (probe(rotated).width, probe(rotated).height) == (240, 320)

    starts = []
    real_start = SplitFrameReader.start

    def counting_start(self):
        starts.append(self.info is None)  # True: started from the guess, before the probe
        return real_start(self)

    monkeypatch.setattr(SplitFrameReader, "start", counting_start)
    cfg = ExtractConfig(test_fraction=0.0, size=96)
    plain = extract([film], tmp_path / "plain", cfg)
    assert starts == [True] and plain.shots == 3  # the guess was right: one ffmpeg

    starts.clear()
    monkeypatch.setattr(extract_module, "guess_size", lambda path: (322, 240, 25.0))
    wrong = extract([film], tmp_path / "wrong", cfg)
    assert starts == [True, False] and wrong.shots == 3  # redone from the probe
    names = lambda out: sorted(p.name for p in (out / "trainB").iterdir())  # noqa: E731
    assert names(tmp_path / "plain") == names(tmp_path / "wrong")

    starts.clear()
    monkeypatch.undo()
    monkeypatch.setattr(SplitFrameReader, "start", counting_start)
    turned = extract([rotated], tmp_path / "rotated", cfg)
    assert guess_size(rotated) == (240, 320, 25.0)
    assert turned.shots == 3 and starts == [True]
    for image in (tmp_path / "rotated" / "trainB").iterdir():
        h, w = cv2.imread(str(image)).shape[:2]
        assert h > w  # upright, as the probe (and a player) shows it


def test_repair_takes_the_bw_frames_from_the_repaired_film(films: Path, tmp_path: Path):
    from filmcolor.config import DEFAULT_REPAIRS, RepairConfig

    plain, repaired = tmp_path / "plain", tmp_path / "repaired"
    extract([films], plain, ExtractConfig(test_fraction=0.0, size=120))
    cfg = ExtractConfig(test_fraction=0.0, size=120, repair=RepairConfig(steps=DEFAULT_REPAIRS))
    summary = extract([films], repaired, cfg)
    assert summary.films == 2 and not summary.failed
    a, b = _manifest(plain), _manifest(repaired)
    assert [(x["image"], x["source"], x["source_hash"]) for x in a] == [
        (x["image"], x["source"], x["source_hash"]) for x in b
    ], "the same frames, named after the film itself"
    differ = {}
    for line in a:
        before = cv2.imread(str(plain / line["image"])).astype(int)
        after = cv2.imread(str(repaired / line["image"])).astype(int)
        differ.setdefault(line["domain"], []).append(float(np.abs(before - after).mean()))
    assert max(differ["B"]) < 0.5, "the colour film is taken as it is"
    assert max(differ["A"]) > 0.5, "the B&W film's frames are the repaired ones"
    assert not list((repaired / ".staging").glob("*.repaired.mkv"))
