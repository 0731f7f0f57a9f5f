"""restore/batch.py: many films into one folder, failures reported, reruns go on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import decoded_frames, make_clip, md5_of_stream

from filmcolor.cli import main
from filmcolor.config import RestoreConfig
from filmcolor.errors import UsageError
from filmcolor.restore.batch import films_of, restore_batch


@pytest.fixture(scope="module")
def reels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reels")
    make_clip(folder / "a.mp4", seconds=1.0)
    make_clip(folder / "b.mkv", seconds=1.6)
    (folder / "broken.mp4").write_bytes(b"\x00" * 2048)  # not a film
    return folder


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]


def test_a_folder_of_films_a_broken_one_reported_and_a_rerun_skips(reels: Path, tmp_path: Path):
    out = tmp_path / "out"
    cfg = RestoreConfig(preset="ultrafast")
    report = restore_batch([reels], out, cfg)
    assert (report.done, report.failed, report.skipped) == (2, 1, 0)
    assert decoded_frames(out / "a.mp4") == 25 and decoded_frames(out / "b.mkv") == 40
    assert md5_of_stream(out / "b.mkv") == md5_of_stream(reels / "b.mkv"), "sound kept"
    assert not (out / "broken.mp4").exists()
    lines = {Path(line["source"]).name: line for line in _manifest(out)}
    assert (
        lines["broken.mp4"]["status"] == "failed" and "broken.mp4" in lines["broken.mp4"]["reason"]
    )
    again = restore_batch([reels], out, cfg)
    assert (again.done, again.failed, again.skipped) == (0, 1, 2)
    assert len(_manifest(out)) == 6


def test_a_film_list_with_per_film_settings(reels: Path, tmp_path: Path):
    films = tmp_path / "films.csv"
    films.write_text(f"film,duration\n{reels / 'a.mp4'},\n{reels / 'b.mkv'},0.8\n")
    out = tmp_path / "out"
    report = restore_batch([films], out, RestoreConfig(preset="ultrafast"))
    assert report.done == 2
    assert decoded_frames(out / "a.mp4") == 25 and decoded_frames(out / "b.mkv") == 20
    bad = tmp_path / "bad.csv"
    bad.write_text(f"film,model\n{reels / 'a.mp4'},x.onnx\n")
    with pytest.raises(UsageError, match="column 'model' cannot be set per film"):
        films_of([bad])
    missing = tmp_path / "missing.txt"
    missing.write_text("nowhere.mp4\n")
    with pytest.raises(UsageError, match="line 1: .*nowhere.mp4' does not exist"):
        films_of([missing])


def test_the_command(reels: Path, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "out"
    done = runner.invoke(
        main,
        ["restore-batch", str(reels / "a.mp4"), "--out", str(out), "-q", "--preset", "ultrafast"],
    )
    assert done.exit_code == 0, done.output
    assert (out / "a.mp4").is_file()
    done = runner.invoke(main, ["restore-batch", str(reels / "broken.mp4"), "--out", str(out)])
    assert done.exit_code == 4 and "none of the 1 films" in done.output
