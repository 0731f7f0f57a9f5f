"""Running ffmpeg and ffprobe: finding them, starting and stopping them, reading their stderr."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import (
    FfmpegNotFoundError,
)

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install it: 'sudo apt-get install ffmpeg' (Debian/Ubuntu), 'brew install ffmpeg' (macOS), "
    "or see https://ffmpeg.org/download.html, then make sure it is on PATH"
)


def require_ffmpeg() -> tuple[str, str]:
    """Return the paths of ffmpeg and ffprobe, or raise :class:`FfmpegNotFoundError`."""
    found = {name: shutil.which(name) for name in ("ffmpeg", "ffprobe")}
    missing = [name for name, where in found.items() if where is None]
    if missing:
        raise FfmpegNotFoundError(f"{' and '.join(missing)} not found on PATH; {INSTALL_HINT}")
    return found["ffmpeg"], found["ffprobe"]  # type: ignore[return-value]


def ffmpeg_base() -> list[str]:
    ffmpeg_bin, _ = require_ffmpeg()
    return [ffmpeg_bin, "-nostdin", "-hide_banner", "-v", "error"]


def media_path(path: Path | str) -> str:
    """A file name as ffmpeg and ffprobe must be given it: absolute, so that a name such as
    ``-dash.mp4`` is never read as an option, nor ``a:b.mp4`` as a protocol."""
    return os.path.abspath(path)


class StderrDrain:
    """Reads a child's stderr on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream) -> None:  # noqa: ANN001 - a binary file object
        self.lines: deque[str] = deque(maxlen=200)
        self.error_lines = 0
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:  # noqa: ANN001
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.lines.append(line)
                if "error" in line.lower():
                    self.error_lines += 1
        stream.close()

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self.lines)


KEEP_FREED = 256 << 20
"""Freed memory malloc keeps for reuse (:func:`keep_freed_memory`)."""


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed memory for reuse instead of handing it back at once.

    Restore makes and drops arrays the size of a frame (megabytes each) for every frame; by
    default glibc maps each of them fresh from the kernel and unmaps it when freed, and every
    new page is faulted in and zeroed again: ``restore --repair`` spent a sixth of its CPU time
    in the kernel doing that. The memory kept is bounded (:data:`KEEP_FREED`; a long restore's
    peak stays flat). A no-op where the C library is not glibc.
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: the default allocator
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 64 << 20)  # arrays up to 64 MB from the heap
        libc.mallopt(m_trim_threshold, KEEP_FREED)
        libc.mallopt(m_top_pad, 64 << 20)


PIPE_BYTES = 1 << 20
"""Pipe buffer asked for the frame pipes (Linux's default is 64 KiB: a 720p frame would cross
it in ~20 pieces, each a wake-up of both sides; 1 MiB is the unprivileged maximum)."""


def widen_pipe(stream: Any) -> None:
    """Give a frame pipe a larger buffer where the system allows it (Linux); harmless elsewhere."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError, ValueError):
        pass  # not Linux, or a lower pipe-max-size: the default buffer works, a little slower


def spawn(cmd: list[str], *, stdin: bool) -> subprocess.Popen:
    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if stdin else subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Own process group: Ctrl-C reaches only us, and we stop the children in order.
            start_new_session=True,
        )
    except FileNotFoundError as err:
        raise FfmpegNotFoundError(f"ffmpeg not found on PATH; {INSTALL_HINT}") from err
    widen_pipe(proc.stdin if stdin else proc.stdout)
    return proc


def stop(proc: subprocess.Popen | None) -> None:
    """Terminate a child and reap it (kill when it does not stop within 5 s)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_children(timeout: float = 5.0) -> int:
    """Stop every ffmpeg and ffprobe child of this process (SIGTERM, then SIGKILL after
    ``timeout``) and reap them; returns how many there were. For the way out after an error or
    an interrupt: an interrupt can land between the start of an ffmpeg process and the
    ``with`` block that would stop it, and such a child (in a session of its own) would
    outlive us. Linux only (it reads /proc); elsewhere nothing is done."""
    me = str(os.getpid())
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
            if fields.get("PPid", "").strip() == me and fields.get("Name", "").strip() in (
                "ffmpeg",
                "ffprobe",
            ):
                children.append(int(status.parent.name))
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in children:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # reaped elsewhere (its Popen), or not ours after all
            if done or time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                break
            time.sleep(0.01)
    return len(children)


def trim_args(start: float | None, duration: float | None) -> dict[str, object]:
    """ffmpeg input options that cut [start, start + duration) out of a file (both optional)."""
    args: dict[str, object] = {}
    if start:
        args["ss"] = f"{start:.6f}"
    if duration:
        args["t"] = f"{duration:.6f}"
    return args


def trial(cmd: list[str], timeout: float = 60) -> tuple[bool, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    return done.returncode == 0, done.stderr.decode("utf-8", "replace")
