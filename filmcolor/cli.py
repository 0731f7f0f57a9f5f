"""The ``filmcolor`` command line: thin click commands over the library.

Each command parses its options, builds a config, calls one library function and turns a
:class:`~filmcolor.errors.FilmcolorError` into one line on stderr and its exit code.
Example::

    filmcolor restore casablanca.mp4 casablanca_color.mp4 --preview before_after.png
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import REPAIRS
from .errors import FilmcolorError, VideoWriteError
from .restore.stages import COLOR_STAGES

log = logging.getLogger("filmcolor")

EXIT_INTERRUPTED = 130
DATA_FOLDER = Path("data/films")
"""Where extract adds films and train finds them, unless told otherwise."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a command with the same clean-up as Ctrl-C."""


class _Interrupted(BaseException):
    """Raised from the SIGTERM/SIGHUP handler so the same clean-up as Ctrl-C runs."""


def _on_sigterm(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    raise _Interrupted()


class _OneLineHandler(logging.Handler):
    """Warnings as 'filmcolor: warning: ...' lines on stderr (tqdm-safe), the config fields
    they name shown as the options of ``ctx``'s command (from any thread)."""

    def __init__(self, ctx: click.Context | None) -> None:
        super().__init__()
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            fields = getattr(record, "fields", ())  # config fields named, shown as the options
            message = _as_options(self.ctx, record.getMessage(), fields)
            tqdm.write(f"filmcolor: {prefix}{message}", file=sys.stderr)
        except Exception:  # logging must never raise
            self.handleError(record)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    root = logging.getLogger("filmcolor")
    root.handlers[:] = [_OneLineHandler(click.get_current_context(silent=True))]
    root.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    root.propagate = False


def run_guarded(ctx: click.Context, action: Callable[[], Any]) -> Any:
    """Run a command body: FilmcolorError -> one line + exit code; Ctrl-C/SIGTERM/SIGHUP -> 130."""
    return _exit_code_of(ctx, lambda: _stopping_children(action))


def _stopping_children(action: Callable[[], Any]) -> Any:
    """Run ``action`` with SIGTERM and SIGHUP raising as Ctrl-C does; on any way out by an
    exception, stop every ffmpeg child first."""
    # SIGHUP (the terminal closed, an SSH session dropped) stops a command as SIGTERM does.
    previous = {sig: signal.signal(sig, _on_sigterm) for sig in STOP_SIGNALS}
    try:
        return action()
    except BaseException:
        # On the way out, no ffmpeg of ours outlives us: an interrupt can land between a
        # child's start and the block that would stop it.
        from .io.process import stop_children

        stop_children()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_code_of(ctx: click.Context, action: Callable[[], Any]) -> Any:
    """Run ``action``: FilmcolorError -> one line + exit code; Ctrl-C/SIGTERM/SIGHUP -> 130."""
    debug = ctx.find_root().params.get("debug", False)
    try:
        return action()
    except FilmcolorError as err:
        if debug:
            raise
        click.echo(f"filmcolor: error: {_as_options(ctx, str(err), err.fields)}", err=True)
        ctx.exit(err.exit_code)
    except (KeyboardInterrupt, _Interrupted):
        if debug:
            raise
        click.echo("filmcolor: interrupted; nothing was written (partial output removed)", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    except OSError as err:  # a last net: the disk or the system refused; still one line
        if debug:
            raise
        where = f" '{err.filename}'" if err.filename else ""
        fix = (
            "free some space or write elsewhere"
            if err.errno == errno.ENOSPC
            else "check the path and its permissions"
        )
        click.echo(f"filmcolor: error: {err.strerror or err}{where}; {fix}", err=True)
        ctx.exit(VideoWriteError.exit_code)


OPTION_OF_FIELD = {"mode": "temporal", "strength": "temporal_strength"}
"""Config fields whose option has another name (TemporalConfig's, under restore's --temporal)."""


def _as_options(ctx: click.Context | None, message: str, fields: tuple[str, ...]) -> str:
    """``message`` with the config fields it names (``fields``, in the order they appear) shown
    as this command's options (``start`` -> ``--start``); a field with no option of its own
    keeps its name."""
    if ctx is None:
        return message
    flags = {}
    for param in ctx.command.params:
        if isinstance(param, click.Option):
            long = max(param.opts, key=len)
            flags.update(
                {param.name: long} | {opt.lstrip("-").replace("-", "_"): long for opt in param.opts}
            )
    for field in fields:
        flag = flags.get(OPTION_OF_FIELD.get(field, field))
        if flag:
            message = re.sub(rf"(?<![\w-]){re.escape(field)}(?![\w-])", flag, message, count=1)
    return message


def _tqdm_progress(quiet: bool, unit: str = "frame") -> Callable[[int | None], Any] | None:
    if quiet:
        return None

    def make(total: int | None) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, unit=unit, dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    return make


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="filmcolor")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log more (ffmpeg command lines, settings).")
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Bring black-and-white films back in colour.

    \b
    Build two unpaired frame sets, learn B&W -> colour, then colorize a whole film:
      filmcolor extract old_movies/ modern_movies/ --out data/films
      filmcolor train --data data/films --out runs/films
      filmcolor export runs/films films.onnx
      filmcolor restore casablanca.mp4 casablanca_color.mp4 --model films.onnx

    `filmcolor restore IN OUT` alone uses the default model shipped with filmcolor.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    from .io.process import keep_freed_memory

    keep_freed_memory()  # frame-sized arrays reused, not mapped fresh for every frame


def _repair_option(help_text: str) -> Callable[[Callable], Callable]:
    """``--repair`` with an optional value (alone: the default repairs; config.parse_repairs)."""
    return click.option(
        "--repair",
        is_flag=False,
        flag_value="default",
        default=None,
        metavar="[LIST]",
        help=help_text,
    )


def _model_options(command: Callable) -> Callable:
    """--model and --device, as restore and restore-batch take them."""
    command = click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="auto uses CUDA only when onnxruntime really gets a GPU.",
    )(command)
    return click.option(
        "--model",
        type=click.Path(path_type=Path),
        help="An exported generator (.onnx). Default: the shipped model.",
    )(command)


def _film_output_options(verb: str, done: str) -> Callable[[Callable], Callable]:
    """The options restore and repair share: how the film is encoded, which piece of it, how it
    is written in segments and resumed, and the output's fate ("Restore"/"restored")."""
    options = [
        click.option("--codec", help="Video encoder (default: libx264; libvpx-vp9 for .webm)."),
        click.option(
            "--crf",
            type=int,
            default=18,
            show_default=True,
            help="Encoder quality; lower is better.",
        ),
        click.option(
            "--preset", default="medium", show_default=True, help="Encoder preset (x264/x265)."
        ),
        click.option("--start", type=float, help="Start at this second (try a piece of the film)."),
        click.option("--duration", type=float, help=f"{verb} only this many seconds."),
        click.option(
            "--jobs",
            default="auto",
            show_default=True,
            help=(
                f"Segments {done} at once, each in its own process; auto: one per 4 cores on a "
                "CPU of 8 cores or more (at most 8), else 1 (and 1 with the model on a GPU)."
            ),
        ),
        click.option(
            "--segment-seconds",
            type=float,
            help=(
                "Length of the pieces the film is written in, the unit --resume continues from "
                "(default 60; shorter with several --jobs on a short film)."
            ),
        ),
        click.option(
            "--resume",
            is_flag=True,
            help=(
                f"Continue an interrupted {verb.lower()} of OUTPUT from its last finished segment "
                "(and keep the finished segments if this run stops too)."
            ),
        ),
        click.option(
            "--accept-truncated",
            is_flag=True,
            help=(
                f"{verb} what a truncated or damaged film holds (with a warning) instead of "
                "refusing a film that ends before its declared length."
            ),
        ),
        click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar, errors only."),
    ]

    def add(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return add


@main.command(
    epilog="""\b
Examples:
  filmcolor restore chaplin.mp4 chaplin_color.mp4
  filmcolor restore reel1.mkv reel1_color.mkv --preview reel1.png
  filmcolor restore film.mp4 try.mp4 --start 60 --duration 10 --overwrite
  filmcolor restore film.mp4 out.mp4 --model runs/films/g.onnx --device cuda --crf 16
  filmcolor restore film.mp4 every.mp4 --keyframe-interval 1   # the model on every frame
  filmcolor restore film.mp4 raw.mp4 --temporal none
  filmcolor restore film.mp4 vivid.mp4 --saturation 1.3   # stronger colour
  filmcolor restore film.mkv film_color.mkv --resume      # after Ctrl-C, a crash or kill -9
  filmcolor restore cut_copy.mkv part_color.mkv --accept-truncated   # what a cut-off file holds
  filmcolor restore film.mp4 out.mp4 --device cuda --jobs 4   # 4 segments at once (many cores)
  filmcolor restore worn.mp4 out.mp4 --repair             # flicker, dust, scratches, grain out
  filmcolor shots film.mp4 --out shots/ && filmcolor restore film.mp4 out.mp4 --reference shots/
  filmcolor restore film.mp4 out.mp4 --reference-palette costume_photo.jpg@3
  filmcolor restore worn.mp4 out.mp4 --repair deflicker,stabilize

Audio, subtitles and other streams are copied bit-exact; a stream the output container
cannot hold is re-encoded (and said so). The output appears only when it is complete.
"""
)
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@_model_options
@click.option(
    "--working-size",
    "--size",
    "working_size",
    type=int,
    help=(
        "Short side of the picture the model sees (default: the model file's, what it was trained "
        "at)."
    ),
)
@click.option("--batch-size", type=int, default=4, show_default=True, help="Frames per model call.")
@_film_output_options("Restore", "restored")
@click.option(
    "--preview",
    type=click.Path(path_type=Path),
    help="Write a before/after sheet of four frames (PNG).",
)
@click.option(
    "--threads",
    type=int,
    default=0,
    help=(
        "onnxruntime threads (0 = half the cores on a CPU, the rest decode and encode; 1 with the "
        "model on a GPU)."
    ),
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "int8"]),
    default="auto",
    show_default=True,
    help="auto: the model's int8 version on a CPU when it has one (faster), fp32 on a GPU.",
)
@click.option(
    "--saturation",
    type=float,
    default=1.0,
    show_default=True,
    help="Colour strength: 1 = the model's calibrated colour, 0 = black and white, 1.3 = stronger.",
)
@click.option(
    "--temporal",
    type=click.Choice(list(COLOR_STAGES)),
    default="flow",
    show_default=True,
    help=(
        "flow: blend colour with the neighbouring frames along the motion, reset at cuts; none: "
        "frame by frame."
    ),
)
@click.option(
    "--temporal-strength",
    type=float,
    default=1.0,
    show_default=True,
    help="Weight of the neighbours' colour (0 = none, up to 2).",
)
@click.option(
    "--keyframe-interval",
    default="auto",
    show_default=True,
    help=(
        "Run the model on every N-th frame and carry colour along the motion between (1 = every "
        "frame); 'auto' picks keyframes where the carried colour runs out."
    ),
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    type=click.Path(path_type=Path),
    help=(
        "A colour picture of a frame, or a folder of them (filmcolor shots's, where only the "
        "pictures you changed or added count); its colour is carried through its shot. Repeat "
        "for more."
    ),
)
@click.option(
    "--reference-palette",
    "reference_palette",
    multiple=True,
    metavar="IMAGE[@SHOT]",
    help=(
        "A colour picture that is not a frame of the film (a photo of the set, a costume): shot "
        "SHOT (counted from 1, as filmcolor shots does; every shot without @SHOT) takes its "
        "colours, dark, mid and light tones each their own. Repeat for more."
    ),
)
@_repair_option(
    "Repair the old film before colouring it: --repair alone removes flicker, dust, scratches "
    "and grain; or name some of " + ", ".join(REPAIRS) + " (or all), e.g. --repair "
    "deflicker,dust. Off by default: the film's own luminance is kept exactly."
)
@click.option(
    "--repair-strength",
    type=float,
    default=1.0,
    show_default=True,
    help="Share of the repair in the result (0 = none, 1 = all of it).",
)
@click.pass_context
def restore(
    ctx: click.Context,
    source: Path,
    output: Path,
    quiet: bool,
    preview: Path | None,
    temporal: str,
    temporal_strength: float,
    keyframe_interval: str,
    repair: str | None,
    repair_strength: float,
    **options: Any,
) -> None:
    """Colorize the film SOURCE into OUTPUT, keeping its sound and every other stream."""
    _setup_logging(ctx.obj.get("verbose", False), quiet)

    def body() -> None:
        from .config import RepairConfig, RestoreConfig, TemporalConfig, parse_repairs
        from .restore.pipeline import restore as run_restore

        interval = _auto_or_count(keyframe_interval, "--keyframe-interval", "a whole number >= 1")
        options["jobs"] = _auto_or_count(
            options["jobs"], "--jobs", "a number of processes from 1 to 64"
        )
        temporal_cfg = TemporalConfig(
            mode=temporal, strength=temporal_strength, keyframe_interval=interval
        )
        repair_cfg = RepairConfig(steps=parse_repairs(repair), strength=repair_strength)
        cfg = RestoreConfig(temporal=temporal_cfg, repair=repair_cfg, **options)
        result = run_restore(source, output, cfg, _tqdm_progress(quiet), preview)
        copied = sum(1 for s in result.streams if s.action == "copy")
        log.info(
            "wrote '%s': %d frames in %.1f s (%.1f fps, %s), %d other stream(s) copied",
            result.output,
            result.frames,
            result.seconds,
            result.fps,
            result.device,
            copied,
        )
        if result.preview:
            log.info("before/after preview: '%s'", result.preview)

    run_guarded(ctx, body)


def _batch_table(lines: list[dict[str, Any]]) -> None:
    """The summary of a batch, a film a row."""
    if not lines:
        return
    log.info("  %-8s %8s %8s %6s  %s", "status", "frames", "seconds", "fps", "film")
    for line in lines:
        name = Path(line["source"]).name
        if line["status"] == "done" and "ready_after" in line:  # on a cluster: when it was ready
            log.info(
                "  %-8s %8d %8.1f %6s  %s (ready after)",
                "done",
                line["frames"],
                line["ready_after"],
                "",
                name,
            )
        elif line["status"] == "done":
            seconds = line.get("seconds") or 0.0
            fps = line["frames"] / seconds if seconds else 0.0
            log.info("  %-8s %8d %8.1f %6.1f  %s", "done", line["frames"], seconds, fps, name)
        else:
            log.info(
                "  %-8s %8s %8s %6s  %s: %s",
                line["status"],
                "",
                "",
                "",
                name,
                line.get("reason", ""),
            )


@main.command(
    "restore-batch",
    epilog="""\b
Examples:
  filmcolor restore-batch reels/ --out restored/
  filmcolor restore-batch 'archive/**/*.mkv' --out restored/ --repair
  filmcolor restore-batch films.csv --out restored/     # film[,start,duration,saturation,repair]
  filmcolor restore-batch reels/ --out restored/ --resume   # after a stop: goes on where it was
  filmcolor restore-batch /nfs/reels/ --out /nfs/restored/ --cluster auto --resume
  filmcolor restore-batch list.csv --out /nfs/out/ --cluster 10.0.0.5:6379 --gpus-per-segment 1

Each film is restored into OUT under its own name; OUT/batch.jsonl gets a line per film (done,
failed and why, or skipped because its output is there). A film that fails does not stop the
others. With --cluster the films' segments are restored on a Ray cluster (pip install
'filmcolor[cluster]'; 'ray start' on each machine): the films, OUT and the model must be on
storage every node reaches under the same paths (docs/cluster.md).
""",
)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for the restored films and batch.jsonl.",
)
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help=(
        "Restore on a Ray cluster: auto (the cluster this machine belongs to), the head's "
        "host:port, or ray://host:port (Ray Client)."
    ),
)
@click.option(
    "--cpus-per-segment",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="With --cluster: CPUs each segment task takes (and its model threads).",
)
@click.option(
    "--gpus-per-segment",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="With --cluster: GPUs each segment task takes (the model then runs on it).",
)
@_model_options
@_repair_option("Repair each film before colouring it (as restore --repair).")
@_film_output_options("Restore", "restored")
@click.pass_context
def restore_batch(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out: Path,
    cluster: str | None,
    cpus_per_segment: float,
    gpus_per_segment: float,
    quiet: bool,
    repair: str | None,
    **options: Any,
) -> None:
    """Restore many films (INPUTS: films, folders, globs, or .txt/.csv lists) into OUT."""
    _setup_logging(ctx.obj.get("verbose", False), quiet)

    def body() -> None:
        from .config import RepairConfig, RestoreConfig, parse_repairs
        from .restore.batch import films_of, restore_batch

        options["jobs"] = _auto_or_count(
            options["jobs"], "--jobs", "a number of processes from 1 to 64"
        )
        cfg = RestoreConfig(repair=RepairConfig(steps=parse_repairs(repair)), **options)
        total = len(films_of(list(inputs)))
        bar = None
        if not quiet and not cluster:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="film", dynamic_ncols=True, file=sys.stderr)

        def on_film(line: dict[str, Any]) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(Path(line["source"]).name + ": " + line["status"])

        frames_bar: list[Any] = []
        make_bar = _tqdm_progress(quiet)

        def progress(expected: int | None) -> Any:
            from .restore.segments import Progress

            made = make_bar(expected) if make_bar else Progress()
            frames_bar.append(made)
            return made

        def on_status(text: str) -> None:
            if frames_bar and hasattr(frames_bar[0], "set_postfix_str"):
                frames_bar[0].set_postfix_str(text, refresh=False)

        try:
            report = restore_batch(
                list(inputs),
                out,
                cfg,
                on_film,
                cluster=cluster,
                cpus=cpus_per_segment,
                gpus=gpus_per_segment,
                progress=progress,
                on_status=on_status,
            )
        finally:
            if bar is not None:
                bar.close()
        _batch_table(report.lines)
        where = ""
        if report.cluster:
            c = report.cluster
            where = (
                f" on {c['nodes']} nodes ({c['cpus']:g} CPUs, {c['gpus']:g} GPUs; "
                f"{c['segments']} segments restored)"
            )
        log.info(
            "%d films restored (%d frames in %.1f s, %.1f fps)%s, %d failed, %d skipped; see '%s'",
            report.done,
            report.frames,
            report.seconds,
            report.frames / report.seconds if report.seconds else 0.0,
            where,
            report.failed,
            report.skipped,
            out / "batch.jsonl",
        )
        if report.failed and not report.done and not report.skipped:
            from .errors import VideoReadError

            raise VideoReadError(
                f"none of the {report.failed} films could be restored; their reasons are in "
                f"'{out / 'batch.jsonl'}'"
            )

    run_guarded(ctx, body)


@main.command(
    epilog="""\b
Examples:
  filmcolor repair worn.mp4 repaired.mp4                   # flicker, dust, scratches, grain
  filmcolor repair worn.mp4 steady.mp4 --repair all        # and the gate weave
  filmcolor repair reel.mkv reel_clean.mkv --repair deflicker,dust --strength 0.7
  filmcolor restore repaired.mp4 colour.mp4          # then colour it (or restore --repair)

The film stays black and white; sound and other streams are copied bit-exact. A colour
film is refused (its colour would be lost).
"""
)
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--repair",
    default="default",
    show_default=True,
    metavar="LIST",
    help=(
        "What to repair: default (deflicker, dust, scratches, degrain), all, or some of "
        + ", ".join(REPAIRS)
        + "."
    ),
)
@click.option(
    "--strength",
    "repair_strength",
    type=float,
    default=1.0,
    show_default=True,
    help="Share of the repair in the result (0 = none, 1 = all of it).",
)
@_film_output_options("Repair", "repaired")
@click.pass_context
def repair(
    ctx: click.Context,
    source: Path,
    output: Path,
    quiet: bool,
    repair: str,
    repair_strength: float,
    **options: Any,
) -> None:
    """Repair the old B&W film SOURCE (flicker, dust, scratches, grain, weave) into OUTPUT."""
    _setup_logging(ctx.obj.get("verbose", False), quiet)

    def body() -> None:
        from .config import RepairConfig, RestoreConfig, parse_repairs
        from .restore.pipeline import restore as run_restore

        options["jobs"] = _auto_or_count(
            options["jobs"], "--jobs", "a number of processes from 1 to 64"
        )
        repair_cfg = RepairConfig(steps=parse_repairs(repair), strength=repair_strength)
        cfg = RestoreConfig(repair=repair_cfg, colour=False, **options)
        result = run_restore(source, output, cfg, _tqdm_progress(quiet))
        log.info(
            "wrote '%s': %d frames repaired (%s) in %.1f s (%.1f fps)",
            result.output,
            result.frames,
            ", ".join(repair_cfg.steps),
            result.seconds,
            result.fps,
        )

    run_guarded(ctx, body)


@main.command(
    epilog="""\b
Examples:
  filmcolor shots film.mp4 --out shots/             # then open shots/index.html
  filmcolor shots film.mp4 --out shots/             # again: refresh the page, edits kept
  filmcolor restore film.mp4 out.mp4 --reference shots/

Writes, for each shot, its frame gray (shotNNNN_fFFFFFF_HH-MM-SS.mmm_gray.png) and the
model's colour of it (..._colour.png: paint over it in any image editor), thumbnails,
shots.json and index.html, a contact sheet that works offline.
"""
)
@click.argument("film", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("shots"),
    show_default=True,
    help="Folder for the shots, shots.json and index.html.",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="An exported generator (.onnx) for the starting colour. Default: the shipped model.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the pictures you changed (and another film's shots) in OUT.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def shots(ctx: click.Context, film: Path, out: Path, quiet: bool, **options: Any) -> None:
    """One frame per shot of FILM, gray and coloured, and a contact sheet to colour them from."""
    _setup_logging(ctx.obj.get("verbose", False), quiet)

    def body() -> None:
        from .config import ShotsConfig
        from .io.probe import probe
        from .restore.shots import references_in, write_shots

        cfg = ShotsConfig(**options)
        bar = _tqdm_progress(quiet)
        progress = bar(probe(film).estimated_frames) if bar else None
        try:
            found = write_shots(film, out, cfg, progress.update if progress else None)
        finally:
            if progress:
                progress.close()
        log.info(
            "wrote %d shots of '%s' to '%s' (%d with a reference); open '%s'",
            len(found),
            film,
            out,
            len(references_in(out)),
            out / "index.html",
        )

    run_guarded(ctx, body)


def _auto_or_count(text: str, option: str, what: str) -> int:
    """An option that takes 'auto' (0) or a whole number >= 1 (--jobs, --keyframe-interval)."""
    if text.strip().lower() == "auto":
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        from .errors import UsageError

        raise UsageError(f"{option} must be 'auto' or {what}, got {text!r}")
    return value


def _train_overrides(settings: tuple[str, ...], **named: Any) -> dict[str, Any]:
    from .config import parse_override

    overrides: dict[str, Any] = {}
    for text in settings:
        keys, value = parse_override(text)
        overrides[".".join(keys)] = value
    overrides.update({k: v for k, v in named.items() if v is not None})
    return overrides


@main.command(
    epilog="""\b
Examples:
  filmcolor train                    # data/films (from filmcolor extract) -> runs/latest
  filmcolor train --data data/films --out runs/films
  filmcolor train pipelines/flowers.toml --data data/flowers --out runs/flowers --max-steps 4
  filmcolor train pipelines/flowers.toml --data data/flowers --out runs/flowers --resume
  filmcolor train pipelines/default.toml --data data/default --set generator.blocks=4
  torchrun --nproc-per-node 4 -m filmcolor.cli train pipelines/films.toml --out runs/films

DATA holds trainA/ (B&W images) and trainB/ (colour images). Watch it with:
  tensorboard --logdir runs/
"""
)
@click.argument("config", required=False, type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=DATA_FOLDER,
    show_default=True,
    help="Folder with trainA/ (B&W) and trainB/ (colour), as filmcolor extract makes it.",
)
@click.option(
    "--out",
    "run_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/latest"),
    show_default=True,
    help="Run folder: config, checkpoints, TensorBoard logs.",
)
@click.option("--max-steps", type=int, help="Stop at this step (continue later with --resume).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--overwrite",
    is_flag=True,
    help=(
        "Start over in a run folder that holds a checkpoint (its checkpoints and logs are removed)."
    ),
)
@click.option("--steps", type=int, help="Total steps of the schedule (overrides the config).")
@click.option("--batch-size", type=int, help="Images per domain per step.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    help="Where to train (auto: CUDA when present).",
)
@click.option("--seed", type=int, help="Seed of weights, data order and augmentation.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any config field, e.g. generator.blocks=6 (repeatable).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def train(
    ctx: click.Context,
    config: Path | None,
    data: Path,
    run_dir: Path,
    max_steps: int | None,
    resume: bool,
    overwrite: bool,
    settings: tuple[str, ...],
    quiet: bool,
    **named: Any,
) -> None:
    """Train a CycleGAN that turns B&W frames into colour frames (CONFIG: a TOML recipe).

    Without CONFIG the paper's settings are used. Needs the [train] extra (PyTorch).
    """
    _setup_logging(ctx.obj.get("verbose", False), quiet)

    def body() -> None:
        from .config import load_train_config

        try:
            from .training.loop import train as run_train
        except ImportError as err:
            raise _missing_torch(err) from err
        source = config
        if resume and config is None and (run_dir / "config.toml").is_file():
            source = run_dir / "config.toml"
        cfg = load_train_config(source, _train_overrides(settings, **named))

        def bar(start: int, stop: int) -> Any:
            from tqdm import tqdm

            return tqdm(initial=start, total=stop, unit="step", dynamic_ncols=True, file=sys.stderr)

        result = run_train(
            cfg,
            data,
            run_dir,
            max_steps=max_steps,
            resume=resume,
            overwrite=overwrite,
            progress=None if quiet else bar,
        )
        if result.interrupted:
            click.echo(
                f"filmcolor: interrupted at step {result.step}; checkpoint saved to "
                f"'{result.checkpoint}'; continue with --resume",
                err=True,
            )
            ctx.exit(EXIT_INTERRUPTED)
        log.info(
            "step %d: checkpoint '%s' (%.1f s)", result.step, result.checkpoint, result.seconds
        )
        log.info("make a model of it with: filmcolor export %s model.onnx", run_dir)

    run_guarded(ctx, body)


def _missing_torch(err: ImportError) -> FilmcolorError:
    from .errors import MissingDependencyError

    return MissingDependencyError(
        f"training and export need PyTorch ({err.name} is missing); install them with "
        "pip install 'filmcolor[train]'"
    )


@main.command(
    epilog="""\b
Examples:
  filmcolor export runs/films films.onnx
  filmcolor export runs/films/checkpoints/last.pt films_fp16.onnx --fp16
  filmcolor export runs/encoder bolder.onnx --temperature 0.3
  filmcolor restore film.mp4 out.mp4 --model films.onnx
"""
)
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (>= 17).")
@click.option("--fp16", is_flag=True, help="Half-precision weights (for GPUs).")
@click.option(
    "--working-size",
    type=int,
    help=(
        "Short side of the picture the model sees, written into its contract (default: the run's "
        "load_size, what it was trained at)."
    ),
)
@click.option(
    "--tolerance",
    type=float,
    default=1e-3,
    show_default=True,
    help="Largest allowed |onnxruntime - PyTorch|.",
)
@click.option(
    "--temperature",
    type=float,
    help=(
        "Softmax temperature of a binned head's annealed mean (default: the run's): lower "
        "paints bolder, likelier colours, higher paler averages."
    ),
)
@click.pass_context
def export(
    ctx: click.Context,
    source: Path,
    out: Path,
    opset: int,
    fp16: bool,
    working_size: int | None,
    tolerance: float,
    temperature: float | None,
) -> None:
    """Export the B&W -> colour generator of a run (SOURCE: run folder or checkpoint) to ONNX."""
    _setup_logging(ctx.obj.get("verbose", False), False)

    def body() -> None:
        from .config import ExportConfig

        try:
            from .model.export import export_onnx
        except ImportError as err:
            raise _missing_torch(err) from err
        report = export_onnx(
            source,
            out,
            ExportConfig(
                opset=opset,
                fp16=fp16,
                tolerance=tolerance,
                working_size=working_size,
                temperature=temperature,
            ),
        )
        log.info(
            "wrote '%s' (%.1f MB, step %d); parity onnxruntime vs PyTorch on %s: max |diff| = %.2e",
            report.path,
            report.size_bytes / 1e6,
            report.trained_steps,
            "x".join(map(str, report.parity_shape)),
            report.max_abs_diff,
        )

    run_guarded(ctx, body)


@main.command(
    epilog="""\b
Examples:
  filmcolor quantize films.onnx --footage reel1.mp4 reel2.mkv
  filmcolor quantize films.onnx --footage stills/ --out films_int8.onnx
  filmcolor restore film.mp4 out.mp4 --model films.onnx      # picks films_int8.onnx on a CPU

Writes MODEL_int8.onnx beside MODEL by default, where restore finds it (--precision auto).
"""
)
@click.argument("model", type=click.Path(path_type=Path))
# click gives a multiple option one value per flag; the paths after the first (the shell's
# expansion of stills/*.png, say) arrive as arguments and join the footage.
@click.argument("more_footage", nargs=-1, metavar="[FOOTAGE]...", type=click.Path(path_type=Path))
@click.option(
    "--footage",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Films, pictures or folders of pictures to calibrate on (repeat, or several after "
    "one flag).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Where to write (default: MODEL_int8.onnx)."
)
@click.option(
    "--frames",
    "count",
    type=int,
    default=32,
    show_default=True,
    help="Calibration frames, spread over the footage.",
)
@click.pass_context
def quantize(
    ctx: click.Context,
    model: Path,
    more_footage: tuple[Path, ...],
    footage: tuple[Path, ...],
    out: Path | None,
    count: int,
) -> None:
    """Make an int8 copy of MODEL for fast CPU restores, calibrated on real footage."""
    _setup_logging(ctx.obj.get("verbose", False), False)
    footage = footage + more_footage

    def body() -> None:
        from .model.quantize import quantize_model

        missing = [p for p in footage if not p.exists()]
        if missing:
            from .errors import UsageError

            raise UsageError(
                f"calibration footage '{missing[0]}' does not exist; check the --footage path"
            )
        quantize_model(model, list(footage), out, count)

    run_guarded(ctx, body)


@main.command(
    epilog="""\b
Examples:
  filmcolor calibrate films.onnx --photos data/films/trainB
  filmcolor calibrate films.onnx --photos holiday_photos/ --target 0.5
  filmcolor restore film.mp4 out.mp4 --model films.onnx      # uses the calibrated strength

Colour photos are made gray and colorized; the factor on the model's chroma that gives
TARGET x the photos' colourfulness is stored in MODEL (and in MODEL_int8.onnx when it
exists). Use photos that are not the ones you evaluate on, e.g. the training set's colour side.
"""
)
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--photos",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Colour pictures or folders of them (repeat the flag for more).",
)
@click.option(
    "--target",
    type=float,
    default=0.6,
    show_default=True,
    help="Colourfulness of the results as a share of the photos' own.",
)
@click.option(
    "--limit",
    type=int,
    default=200,
    show_default=True,
    help="Photos to use at most, spread over those found.",
)
@click.pass_context
def calibrate(
    ctx: click.Context, model: Path, photos: tuple[Path, ...], target: float, limit: int
) -> None:
    """Set how strongly MODEL colours: a gain on its chroma, measured on colour photos."""
    _setup_logging(ctx.obj.get("verbose", False), False)

    def body() -> None:
        from .model.calibrate import calibrate_model

        if not model.is_file():
            from .errors import UsageError

            raise UsageError(
                f"model '{model}' does not exist; give an .onnx file made by 'filmcolor export'"
            )
        calibrate_model(model, list(photos), target, limit)

    run_guarded(ctx, body)


@main.command(
    epilog="""\b
Examples:
  filmcolor extract old_movies/ modern_movies/ --out data/films
  filmcolor extract casablanca.mp4                 # adds one film to data/films
  filmcolor extract reels/*.mkv --domain bw --out data/films --per-shot 2
  filmcolor extract 'archive/**/*.mp4' --out data/films --jobs 2 --size 256
  filmcolor extract worn_reels/ --domain bw --repair      # B&W frames repaired first
  filmcolor extract /nfs/reels/ --out /nfs/data/films --cluster auto   # films over a Ray cluster

Each film goes to trainA (B&W, also tinted/sepia) or trainB (colour) by its measured colour
spread, or testA/testB for a held-out share of films. Rerunning skips films already done.
"""
)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DATA_FOLDER,
    show_default=True,
    help="Data folder to add the films to (trainA, trainB, testA, testB, manifest.jsonl).",
)
@click.option(
    "--domain",
    type=click.Choice(["auto", "bw", "color"]),
    default="auto",
    show_default=True,
    help="Domain of the films; auto measures colour.",
)
@click.option("--per-shot", type=int, default=3, show_default=True, help="Frames kept per shot.")
@click.option(
    "--max-per-film",
    type=int,
    default=500,
    show_default=True,
    help="At most this many frames per film.",
)
@click.option(
    "--every",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds between candidate frames in a shot.",
)
@click.option(
    "--size", type=int, default=286, show_default=True, help="Short side of the written images."
)
@click.option(
    "--test-fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Share of films held out in testA/testB.",
)
@click.option("--jobs", type=int, default=1, show_default=True, help="Films processed at once.")
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help=(
        "Extract the films on a Ray cluster: auto, the head's host:port, or ray://host:port "
        "(films and OUT on storage every node reaches under the same paths)."
    ),
)
@click.option(
    "--detector",
    type=click.Choice(["content", "adaptive"]),
    default="content",
    show_default=True,
    help="PySceneDetect detector for the cuts.",
)
@click.option("--threshold", type=float, help="Detector threshold (default: PySceneDetect's).")
@_repair_option(
    "Repair the B&W films before their frames are taken (as restore --repair: alone, "
    "deflicker, dust, scratches, degrain; or a list)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def extract(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out: Path,
    quiet: bool,
    detector: str,
    threshold: float | None,
    repair: str | None,
    cluster: str | None,
    **options: Any,
) -> None:
    """Build the two unpaired frame sets from films: INPUTS are files, folders or globs."""
    _setup_logging(ctx.obj.get("verbose", False), quiet)

    def body() -> None:
        from .config import ExtractConfig, RepairConfig, SceneConfig, parse_repairs
        from .extract.films import extract as run_extract
        from .io.files import find_videos
        from .io.probe import probe

        cfg = ExtractConfig(
            scenes=SceneConfig(detector=detector, threshold=threshold),
            repair=RepairConfig(steps=parse_repairs(repair)),
            **options,
        )
        bar = None
        if not quiet and cfg.jobs == 1 and not cluster:
            from tqdm import tqdm

            total = 0
            for path in find_videos(list(inputs)):
                with contextlib.suppress(FilmcolorError):  # a bad file is reported later
                    total += probe(path).estimated_frames or 0
            bar = tqdm(total=total or None, unit="frame", dynamic_ncols=True, file=sys.stderr)

        def on_film(report: Any) -> None:
            if report.error:
                log.warning("skipped: %s", report.error)
                return
            kind = "B&W" if report.domain == "A" else "colour"
            log.info(
                "%s: %s (colour spread %.1f), %d shots, %d frames -> %s%s",
                Path(report.source).name,
                kind,
                report.saturation,
                report.shots,
                report.kept,
                report.split,
                report.domain,
            )

        try:
            summary = run_extract(
                list(inputs),
                out,
                cfg,
                on_film,
                bar.update if bar is not None else None,
                cluster=cluster,
            )
        finally:
            if bar is not None:
                bar.close()
        kept = ", ".join(f"{k}: {v}" for k, v in sorted(summary.kept.items())) or "none"
        dropped = ", ".join(f"{k} {v}" for k, v in summary.dropped.most_common()) or "none"
        log.info(
            "%d films (%d already done, %d failed), %d shots; frames kept %s; dropped: %s",
            summary.films,
            summary.skipped_done,
            len(summary.failed),
            summary.shots,
            kept,
            dropped,
        )
        log.info(
            "data set: '%s' (trainA B&W, trainB colour); train on it with: filmcolor train --data "
            "%s",
            out,
            out,
        )

    run_guarded(ctx, body)


if __name__ == "__main__":  # pragma: no cover
    main()
