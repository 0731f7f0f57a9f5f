"""Files that appear whole or not at all, and pictures: one way to write a file atomically, one
image loader and one image writer for every tool."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import UsageError, VideoWriteError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""Picture files every tool reads (training data, calibration photos, quantisation frames)."""

VIDEO_SUFFIXES = {
    ".mp4",
    ".mkv",
    ".mov",
    ".avi",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m2ts",
    ".wmv",
    ".flv",
    ".ogv",
    ".3gp",
    ".mxf",
    ".vob",
    ".dv",
}


def find_videos(inputs: Iterable[str | Path]) -> list[Path]:
    """Video files among files, folders (searched recursively) and glob patterns."""
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        matches = (
            [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            if glob.has_magic(text)
            else [Path(text)]
        )
        if not matches:
            raise UsageError(f"'{text}' matches no file; check the pattern")
        for path in matches:
            if path.is_dir():
                found += sorted(
                    p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                )
            elif path.exists():
                found.append(path)
            else:
                raise UsageError(f"input '{path}' does not exist; check the path")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def partial_path(path: Path) -> Path:
    """The temporary name ``path`` is written under before its rename: ``.NAME.filmcolor-part.EXT``
    in the same folder (hidden, and the same file system, so the rename is atomic)."""
    return path.with_name(f".{path.stem}.filmcolor-part{path.suffix}")


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Write ``path`` whole or not at all: the block writes the yielded temporary name, which is
    renamed to ``path`` when the block ends cleanly and removed when it raises. A process killed
    inside the block leaves the temporary file, which the next write to ``path`` replaces.

    Example::

        with atomic_write(Path("run/config.toml")) as tmp:
            tmp.write_text(text)
    """
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_rgb(path: Path, short_side: int | None = None, upscale: bool = False) -> np.ndarray:
    """A picture as uint8 RGB (H, W, 3), its short side shrunk to ``short_side`` (pixel-area
    averaging) when it is larger, and with ``upscale`` enlarged to it (bicubic) when smaller.

    Raises:
        OSError: the file cannot be read or is not a picture OpenCV decodes.
    """
    raw = np.fromfile(str(path), np.uint8)  # (not cv2.imread: names in any encoding)
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if image is None:
        raise OSError(f"'{path}' is not a readable image")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if short_side is None:
        return image
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    if scale >= 1 and not upscale:
        return image
    size = (
        (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
        if upscale
        else (max(1, round(w * scale)), max(1, round(h * scale)))
    )
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def write_image(path: Path, rgb: np.ndarray, quality: int = 95) -> Path:
    """Write an RGB picture atomically; its extension picks the format (PNG when it has none).

    Raises:
        VideoWriteError: the format is unknown, or the folder cannot be written.
    """
    suffix = path.suffix or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise VideoWriteError(f"cannot encode picture '{path}'; name it .png or .jpg")
    try:
        with atomic_write(path) as tmp:
            tmp.write_bytes(data.tobytes())
    except OSError as err:
        raise VideoWriteError(
            f"cannot write '{path}' ({err.strerror}); choose a writable folder"
        ) from err
    return path
