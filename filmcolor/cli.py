"""The ``filmcolor`` command line: thin click commands over the library.

Each command parses its options, builds a config, calls one library function and turns a
:class:`~filmcolor.errors.FilmcolorError` into one line on stderr and its exit code.
Example::

    filmcolor restore casablanca.mp4 casablanca_color.mp4 --preview before_after.png
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import FilmcolorError

log = logging.getLogger("filmcolor")

EXIT_INTERRUPTED = 130


class _Interrupted(BaseException):
    """Raised from the SIGTERM handler so the same clean-up as Ctrl-C runs."""


def _on_sigterm(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    raise _Interrupted()


class _OneLineHandler(logging.Handler):
    """Warnings as 'filmcolor: warning: ...' lines on stderr (tqdm-safe)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            tqdm.write(f"filmcolor: {prefix}{record.getMessage()}", file=sys.stderr)
        except Exception:  # logging must never raise
            self.handleError(record)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    root = logging.getLogger("filmcolor")
    root.handlers[:] = [_OneLineHandler()]
    root.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    root.propagate = False


def run_guarded(ctx: click.Context, action: Callable[[], Any]) -> Any:
    """Run a command body: FilmcolorError -> one line + exit code; Ctrl-C/SIGTERM -> 130."""
    debug = ctx.find_root().params.get("debug", False)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return action()
    except FilmcolorError as err:
        if debug:
            raise
        click.echo(f"filmcolor: error: {err}", err=True)
        ctx.exit(err.exit_code)
    except (KeyboardInterrupt, _Interrupted):
        if debug:
            raise
        click.echo("filmcolor: interrupted; nothing was written (partial output removed)", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)


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


@main.command(
    epilog="""\b
Examples:
  filmcolor restore chaplin.mp4 chaplin_color.mp4
  filmcolor restore reel1.mkv reel1_color.mkv --preview reel1.png
  filmcolor restore film.mp4 try.mp4 --start 60 --duration 10 --overwrite
  filmcolor restore film.mp4 out.mp4 --model runs/films/g.onnx --device cuda --crf 16

Audio, subtitles and other streams are copied bit-exact; a stream the output container
cannot hold is re-encoded (and said so). The output appears only when it is complete.
"""
)
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--model", type=click.Path(path_type=Path), help="An exported generator (.onnx). Default: the shipped model.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="auto uses CUDA only when onnxruntime really gets a GPU.")
@click.option("--size", type=int, help="Short side of the picture the model sees (default: the model's, 256).")
@click.option("--batch-size", type=int, default=4, show_default=True, help="Frames per model call.")
@click.option("--codec", help="Video encoder (default: libx264; libvpx-vp9 for .webm).")
@click.option("--crf", type=int, default=18, show_default=True, help="Encoder quality; lower is better.")
@click.option("--preset", default="medium", show_default=True, help="Encoder preset (x264/x265).")
@click.option("--start", type=float, help="Start at this second (try a piece of the film).")
@click.option("--duration", type=float, help="Restore only this many seconds.")
@click.option("--preview", type=click.Path(path_type=Path), help="Write a before/after sheet of four frames (PNG).")
@click.option("--threads", type=int, default=0, help="onnxruntime threads (0 = one per core).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, errors only.")
@click.pass_context
def restore(ctx: click.Context, source: Path, output: Path, quiet: bool, preview: Path | None, **options: Any) -> None:
    """Colorize the film SOURCE into OUTPUT, keeping its sound and every other stream."""
    _setup_logging(ctx.obj.get("verbose", False), quiet)

    def body() -> None:
        from .config import RestoreConfig
        from .restore import restore as run_restore

        cfg = RestoreConfig(**options)
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


if __name__ == "__main__":  # pragma: no cover
    main()
