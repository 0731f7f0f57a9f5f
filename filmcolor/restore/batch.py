"""Many films restored into one folder, film after film, with a manifest of what happened.

``filmcolor restore-batch INPUTS... --out DIR``: INPUTS are films, folders, glob patterns, or
lists of films (``.txt``: a path a line; ``.csv``: a ``film`` column and, per film, any of
``start``, ``duration``, ``saturation``, ``repair``). Each film is restored by
:func:`~filmcolor.restore.pipeline.restore` into ``DIR`` under its own name, with the batch's
settings and its own; ``DIR/batch.jsonl`` gets a line per film as it ends (done, failed with
the one-line reason, or skipped because its output is already there). A film that fails does
not stop the others; a film whose output exists is skipped, so the same command run again goes
on where a stopped batch left off (with ``resume``, the film that was stopped halfway continues
from its finished segments). Example::

    report = restore_batch(["reels/"], Path("out"), RestoreConfig())
    print(report.done, report.failed)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RepairConfig, RestoreConfig, parse_repairs
from ..errors import FilmcolorError, UsageError
from ..io.files import find_videos
from .pipeline import restore
from .segments import ProgressFactory

log = logging.getLogger(__name__)

MANIFEST = "batch.jsonl"
LIST_SUFFIXES = (".txt", ".csv")
SKIPPED = "the output exists (restored by an earlier run)"
"""Why a film whose output is there is not restored again (its manifest line's reason)."""
PER_FILM = ("start", "duration", "saturation", "repair")
"""The columns a film list may set per film."""


@dataclass
class Film:
    """A film of the batch and its own settings (None: the batch's)."""

    source: Path
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchReport:
    """What a batch did, film by film (also in ``DIR/batch.jsonl``)."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    frames: int = 0
    seconds: float = 0.0
    lines: list[dict[str, Any]] = field(default_factory=list)
    cluster: dict[str, Any] = field(default_factory=dict)
    """On a cluster: its nodes, CPUs and GPUs, and the segments restored."""


def films_of(inputs: list[str | Path]) -> list[Film]:
    """The films of ``inputs``: films, folders, globs, and film lists (.txt, .csv).

    Raises:
        UsageError: an input does not exist, or a list names a film that does not, or a
            column it cannot set.
    """
    films: list[Film] = []
    plain: list[str | Path] = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            films += _read_list(path)
        else:
            plain.append(item)
    if plain:
        films += [Film(p) for p in find_videos(plain)]
    seen: dict[Path, Film] = {}
    for film in films:
        seen.setdefault(film.source.resolve(), film)
    if not seen:
        raise UsageError("no film found in the inputs; give films, folders or a list of films")
    return list(seen.values())


def _read_list(path: Path) -> list[Film]:
    base = path.parent
    if path.suffix.lower() == ".txt":
        rows = [
            {"film": line.strip()}
            for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows and "film" not in rows[0]:
            raise UsageError(
                f"film list '{path}' has no 'film' column; name the films' column film"
            )
    films = []
    for number, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        source = Path(row["film"])
        source = source if source.is_absolute() else base / source
        if not source.is_file():
            raise UsageError(
                f"film list '{path}', line {number}: '{source}' does not exist; check the path"
            )
        options = {}
        for key, value in row.items():
            if key == "film" or value in (None, ""):
                continue
            if key not in PER_FILM:
                raise UsageError(
                    f"film list '{path}': column '{key}' cannot be set per film; use "
                    f"{', '.join(PER_FILM)}"
                )
            options[key] = value if key == "repair" else _number(path, number, key, value)
        films.append(Film(source, options))
    return films


def _number(path: Path, line: int, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise UsageError(
            f"film list '{path}', line {line}: {key} '{value}' is not a number"
        ) from None


def film_config(base: RestoreConfig, film: Film) -> RestoreConfig:
    """The batch's settings with the film's own."""
    changes = dict(film.options)
    if "repair" in changes:
        changes["repair"] = RepairConfig(steps=parse_repairs(str(changes["repair"])))
    return dataclasses.replace(base, **changes)


def restore_batch(
    inputs: list[str | Path],
    out: Path,
    cfg: RestoreConfig,
    on_film: Callable[[dict[str, Any]], None] | None = None,
    cluster: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    progress: ProgressFactory | None = None,
    on_status: Callable[[str], None] | None = None,
) -> BatchReport:
    """Restore every film of ``inputs`` into ``out`` (see the module docstring): film after
    film on this machine, or with ``cluster`` (a Ray address: ``auto``, ``host:port``,
    ``ray://host:port``) segment by segment on a Ray cluster, each segment task taking ``cpus``
    CPUs and ``gpus`` GPUs (:mod:`filmcolor.restore.distributed`). ``on_film`` gets each film's
    manifest line as it ends; on a cluster, ``progress`` is called with the frames of all films
    and ``on_status`` with a line of counts.

    Raises:
        UsageError: the inputs hold no film, or ``out`` is a file.
        MissingDependencyError: ``cluster`` without ray installed.
        ClusterError: the cluster cannot be reached.
    """
    films = films_of(inputs)
    if out.exists() and not out.is_dir():
        raise UsageError(f"'{out}' is a file; give a folder for the restored films")
    names: dict[str, Path] = {}
    for film in films:
        other = names.setdefault(film.source.name, film.source)
        if other != film.source:
            raise UsageError(
                f"'{other}' and '{film.source}' would both be '{out / film.source.name}'; "
                "restore them into different folders"
            )
    out.mkdir(parents=True, exist_ok=True)
    report = BatchReport()
    started = time.perf_counter()

    def record(line: dict[str, Any]) -> None:
        report.lines.append(line)
        if line["status"] == "done":
            report.done += 1
            report.frames += line.get("frames", 0)
        elif line["status"] == "failed":
            report.failed += 1
        else:
            report.skipped += 1
        with (out / MANIFEST).open("a") as manifest:
            manifest.write(json.dumps(line) + "\n")
        if on_film:
            on_film(line)

    if cluster:
        from .distributed import restore_on_cluster

        report.cluster = restore_on_cluster(
            films, out, cfg, cluster, cpus, gpus, record, progress, on_status
        )
        order = {str(film.source): i for i, film in enumerate(films)}
        report.lines.sort(key=lambda line: order.get(line["source"], len(order)))
    else:
        for film in films:
            record(_restore_here(film, out, cfg))
    report.seconds = time.perf_counter() - started
    return report


def _restore_here(film: Film, out: Path, cfg: RestoreConfig) -> dict[str, Any]:
    """One film restored on this machine: its manifest line."""
    target = out / film.source.name
    line: dict[str, Any] = {"source": str(film.source), "output": str(target)}
    if target.exists() and not cfg.overwrite:
        line.update(status="skipped", reason=SKIPPED)
        return line
    try:
        result = restore(film.source, target, film_config(cfg, film))
    except FilmcolorError as err:
        line.update(status="failed", reason=str(err), exit_code=err.exit_code)
        log.warning("'%s' failed: %s", film.source, err)
    else:
        line.update(status="done", frames=result.frames, seconds=round(result.seconds, 2))
    return line
