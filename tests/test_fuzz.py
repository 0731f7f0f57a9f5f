"""A bounded fuzz test: byte flips and truncations of a valid clip never give a traceback or a
hang."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import decoded_frames, make_clip, sha256

from filmcolor.cli import main

CASES = 36
SECONDS_PER_CASE = 60


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz")
    return {
        suffix: make_clip(folder / f"valid{suffix}", seconds=1.0, size="96x64").read_bytes()
        for suffix in (".mp4", ".mkv")
    }


def _mutate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    kind = rng.integers(0, 3)
    if kind == 0:  # truncate anywhere
        cut = int(rng.integers(0, len(data)))
        return data[:cut], f"truncated at {cut}/{len(data)}"
    flipped = bytearray(data)
    count = int(rng.integers(1, 200)) if kind == 1 else int(rng.integers(1, 8))
    start = (
        0 if kind == 1 else int(rng.integers(0, min(4096, len(data))))
    )  # kind 2: the header region
    stop = len(data) if kind == 1 else min(len(data), start + 512)
    for position in rng.integers(start, stop, count):
        flipped[position] ^= int(rng.integers(1, 256))
    return bytes(flipped), f"{count} bytes flipped in [{start}, {stop})"


def _alarm(signum, frame):
    raise TimeoutError("restore hung")


@pytest.mark.parametrize("case", range(CASES))
def test_fuzzed_input_gives_a_result_or_one_line(
    case: int, valid: dict[str, bytes], tmp_path: Path, affine_model: Path
):
    rng = np.random.default_rng(1000 + case)
    suffix = ".mp4" if case % 2 == 0 else ".mkv"
    data, how = _mutate(valid[suffix], rng)
    source = tmp_path / f"fuzz{suffix}"
    source.write_bytes(data)
    before = sha256(source)
    out = tmp_path / "out.mkv"
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_CASE)
    try:
        result = CliRunner().invoke(
            main,
            [
                "restore",
                str(source),
                str(out),
                "--model",
                str(affine_model),
                "--preset",
                "ultrafast",
                "-q",
            ],
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        how,
        result.exception,
    )
    assert "Traceback" not in result.output, how
    assert result.exit_code in (0, 4, 5), (how, result.exit_code, result.output)
    assert sha256(source) == before
    assert not [p for p in tmp_path.iterdir() if "filmcolor-" in p.name], how
    if result.exit_code == 0:
        assert decoded_frames(out) >= 1, how
    else:
        assert not out.exists()
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and source.name in lines[0], (how, result.stderr)


def test_a_cut_off_matroska_file_is_not_restored_short(
    valid: dict[str, bytes], tmp_path: Path, affine_model: Path
):
    source = tmp_path / "cut.mkv"
    source.write_bytes(valid[".mkv"][: len(valid[".mkv"]) // 5])  # its header still says 1 s
    result = CliRunner().invoke(
        main, ["restore", str(source), str(tmp_path / "o.mkv"), "--model", str(affine_model)]
    )
    assert (
        result.exit_code == 4
        and "truncated" in result.stderr
        and "of the 1.0 s it declares" in result.stderr
    )
