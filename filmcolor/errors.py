"""The exception hierarchy of filmcolor.

Every error a user can cause (a bad file, a missing program, a wrong model) is a
:class:`FilmcolorError`. Its message is one line naming the file, the cause and the fix;
the CLI prints it and exits with the class's ``exit_code``. Example::

    try:
        info = probe(Path("reel1.mkv"))
    except VideoReadError as err:
        print(err, err.exit_code)
"""

from __future__ import annotations

from typing import ClassVar


class FilmcolorError(Exception):
    """Root of all filmcolor errors: one clear line and an exit code.

    ``fields`` names the config fields the message speaks of (``start``, ``overwrite``, ...):
    the library says what a setting is called in its config, and the command line shows the
    option that sets it instead (``--start``), see filmcolor.cli.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str = "", *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields

    def __reduce__(self) -> tuple:  # keeps fields through pickling (--jobs worker processes)
        return (_rebuild, (type(self), str(self), self.fields))


class FfmpegNotFoundError(FilmcolorError):
    """ffmpeg or ffprobe is not installed or not on PATH."""

    exit_code: ClassVar[int] = 3


class VideoReadError(FilmcolorError):
    """An input is missing, is not a video, or cannot be decoded to the end."""

    exit_code: ClassVar[int] = 4


class VideoWriteError(FilmcolorError):
    """The output cannot be written (folder, permissions, disk, container)."""

    exit_code: ClassVar[int] = 5


class SceneDetectionError(FilmcolorError):
    """PySceneDetect could not analyse a video."""

    exit_code: ClassVar[int] = 6


class CheckpointError(FilmcolorError):
    """A training checkpoint or run folder is missing, unreadable or of other networks."""

    exit_code: ClassVar[int] = 7


class ConfigError(FilmcolorError):
    """A training recipe (TOML) is missing or not valid TOML."""

    exit_code: ClassVar[int] = 7


class DataError(FilmcolorError):
    """A data folder is missing, holds no images, or an image cannot be read."""

    exit_code: ClassVar[int] = 10


class DeviceError(FilmcolorError):
    """A device that was asked for (a CUDA GPU) cannot be used."""

    exit_code: ClassVar[int] = 11


class TrainingDivergedError(FilmcolorError):
    """A training loss became NaN or infinite."""

    exit_code: ClassVar[int] = 12


class MissingDependencyError(FilmcolorError):
    """An optional part of filmcolor is not installed (PyTorch, onnx, the encoder's weights)."""

    exit_code: ClassVar[int] = 13


class ExportError(FilmcolorError):
    """Exporting a generator to ONNX failed, or the export does not match PyTorch."""

    exit_code: ClassVar[int] = 8


class EngineError(FilmcolorError):
    """An ONNX model cannot be loaded or does not follow the filmcolor contract."""

    exit_code: ClassVar[int] = 9


class ClusterError(FilmcolorError):
    """A Ray cluster cannot be reached, or lost the work it was given."""

    exit_code: ClassVar[int] = 14


class UsageError(FilmcolorError):
    """Options that contradict each other or the files given (output exists, output == input)."""

    exit_code: ClassVar[int] = 2


def stderr_tail(stderr: bytes | str, lines: int = 3) -> str:
    """Return the last meaningful lines of a program's stderr, joined on one line.

    Args:
        stderr: the captured standard error.
        lines: how many lines to keep.
    """
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def _rebuild(cls: type[FilmcolorError], message: str, fields: tuple[str, ...]) -> FilmcolorError:
    return cls(message, fields=fields)
