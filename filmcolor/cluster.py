"""A Ray cluster as filmcolor uses it: the only module that imports ``ray``.

``restore-batch --cluster`` and ``extract --cluster`` hand their units of work (a segment of a
film, a whole film) to Ray, which schedules them over the cluster's nodes and runs a unit again
on another node when the worker or the node running it is lost (``max_retries``: retries come
from Ray, not from our own loops). Each task runs in one of Ray's worker processes, which Ray
keeps for the next task of the same job: the model session a segment opens is cached in that
process and serves its next segments. Example::

    with Cluster.connect("auto") as cluster:
        ref = cluster.submit(restore_segment, args, cpus=1)
        done, _ = cluster.wait([ref])
        print(cluster.result(done[0]))

Requirements of a cluster: filmcolor (with the same model files) installed on every node, and
the films, the output folder and the model reachable under the same paths from every node (a
shared file system such as NFS); see docs/cluster.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ClusterError, FilmcolorError, MissingDependencyError

log = logging.getLogger(__name__)

INSTALL = "pip install 'filmcolor[cluster]'"


@dataclass(frozen=True)
class ClusterSize:
    """What the cluster offers: alive nodes and their CPUs and GPUs in all."""

    nodes: int
    cpus: float
    gpus: float


class TaskLost(ClusterError):
    """A unit of work whose worker or node was lost more often than Ray retries it."""


def _unreachable(address: str, reason: str) -> ClusterError:
    return ClusterError(
        f"cluster '{address}': no Ray cluster answers there ({reason}); start one with 'ray "
        "start --head' (and 'ray start --address HEAD:6379' on the other machines), or give its "
        "address: auto, host:port or ray://host:port",
        fields=("cluster",),
    )


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once when nothing listens at ``host:port`` (Ray itself would retry for minutes,
    printing a line every few seconds). ``auto`` is left to Ray, which knows where to look."""
    import socket

    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"cluster '{address}' is not an address (auto, host:port or ray://host:port); give the "
            "address 'ray start --head' printed (for example 10.0.0.5:6379)",
            fields=("cluster",),
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout).close()
    except OSError as err:
        raise _unreachable(address, err.strerror or str(err)) from None


class Cluster:
    """A connection to a running Ray cluster (:meth:`connect`); closed on leaving ``with``."""

    def __init__(self, ray: Any, address: str) -> None:
        self._ray = ray
        self.address = address
        self._remote: dict[tuple[Callable, float, float, int], Any] = {}

    @classmethod
    def connect(cls, address: str) -> Cluster:
        """Join the Ray cluster at ``address``: ``auto`` (the cluster this machine is a node
        of), the head's ``host:port``, or ``ray://host:port`` (Ray Client, from outside).

        Raises:
            MissingDependencyError: ray is not installed.
            ClusterError: nothing answers at ``address``.
        """
        try:
            import ray
        except ImportError:
            raise MissingDependencyError(
                f"cluster '{address}': Ray is not installed; install it with {INSTALL}",
                fields=("cluster",),
            ) from None
        _check_reachable(address)
        # Ray Client's server starts a process for each client; on a loaded head that start
        # was seen to fail once and succeed when asked again: a client address gets 3 tries.
        tries = 3 if address.startswith("ray://") else 1
        for attempt in range(tries):
            try:
                ray.init(
                    address=address,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    configure_logging=True,
                )
                break
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
                if attempt + 1 == tries:
                    raise _unreachable(address, " ".join(str(err).split())[:200]) from None
                log.debug("cluster '%s': %s; asking again", address, err)
                with contextlib.suppress(Exception):
                    ray.shutdown()
                time.sleep(2.0 * (attempt + 1))
        return cls(ray, address)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Leave the cluster (its nodes go on running)."""
        self._ray.shutdown()

    def size(self) -> ClusterSize:
        """Alive nodes, CPUs and GPUs of the cluster now."""
        nodes = [node for node in self._ray.nodes() if node.get("Alive")]
        cpus = sum(node.get("Resources", {}).get("CPU", 0.0) for node in nodes)
        gpus = sum(node.get("Resources", {}).get("GPU", 0.0) for node in nodes)
        return ClusterSize(len(nodes), cpus, gpus)

    def submit(
        self,
        function: Callable[..., Any],
        args: Sequence[Any],
        cpus: float = 1.0,
        gpus: float = 0.0,
        retries: int = 3,
    ) -> Any:
        """Run ``function(*args)`` on a node with ``cpus`` CPUs and ``gpus`` GPUs free; a task
        whose worker or node is lost runs again elsewhere, up to ``retries`` times. Returns the
        task's reference (for :meth:`wait` and :meth:`result`)."""
        key = (function, cpus, gpus, retries)
        if key not in self._remote:
            self._remote[key] = self._ray.remote(
                num_cpus=cpus, num_gpus=gpus, max_retries=retries, retry_exceptions=False
            )(function)
        return self._remote[key].remote(*args)

    def wait(self, refs: Sequence[Any], timeout: float | None = None) -> tuple[list, list]:
        """The references among ``refs`` that are finished (at least one, unless ``timeout``
        seconds pass first), and the others."""
        if not refs:
            return [], []
        return self._ray.wait(list(refs), num_returns=1, timeout=timeout)

    def result(self, ref: Any) -> Any:
        """A finished task's value; its own error re-raised as it was raised on the node.

        Raises:
            FilmcolorError: the task raised it (a damaged film, a full disk).
            TaskLost: the task's worker or node was lost on every try.
        """
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, FilmcolorError):
                raise cause from None
            raise TaskLost(f"{type(cause).__name__ if cause else 'error'}: {cause}") from None
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as err:
            raise TaskLost(
                f"its worker was lost on every try ({type(err).__name__}); check the nodes' "
                "memory and logs (ray status)"
            ) from None
        except exceptions.RayError as err:
            raise TaskLost(f"{type(err).__name__}: {' '.join(str(err).split())[:200]}") from None

    def cancel(self, ref: Any) -> None:
        """Stop a task that is not needed any more (queued or running)."""
        try:
            self._ray.cancel(ref, force=True)
        except Exception as err:  # already finished or gone: nothing to stop
            log.debug("cancel: %s", err)


class LocalCluster:
    """Ray nodes on this machine, each started with ``ray start --block`` in a session of its
    own and stopped by process id: a cluster to try ``--cluster`` on one machine, and what the
    tests and ``pipelines/bench_cluster.py`` run. Example::

        nodes = LocalCluster(port=6379)
        nodes.start("head", head=True)
        nodes.start("node1")
        ...  # restore-batch --cluster 127.0.0.1:6379
        nodes.stop()
    """

    def __init__(self, port: int = 6379, cpus: int = 1, ray: Path | None = None) -> None:
        import sys
        import tempfile

        self.port, self.cpus = port, cpus
        self.address = f"127.0.0.1:{port}"
        self.ray = ray or Path(sys.executable).parent / "ray"
        self.temp = Path(tempfile.mkdtemp(prefix="fcray", dir="/tmp"))  # short: socket paths
        self.nodes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, head: bool = False, timeout: float = 90.0) -> None:
        """Start node ``name`` (the head first) and wait until it has joined."""
        where = ["--head", "--port", str(self.port), "--include-dashboard", "false"]
        cmd = [
            str(self.ray),
            "start",
            *(where if head else ["--address", self.address]),
            "--num-cpus",
            str(self.cpus),
            "--object-store-memory",
            str(80 * 1024 * 1024),
            "--temp-dir",
            str(self.temp),
            "--disable-usage-stats",
            "--block",
        ]
        log_path = self.temp / f"{name}.log"
        with log_path.open("w") as log_file:
            self.nodes[name] = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in log_path.read_text():
            if self.nodes[name].poll() is not None or time.monotonic() > deadline:
                self.kill(name)
                raise ClusterError(f"Ray node {name} did not start: {log_path.read_text()[-400:]}")
            time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop node ``name`` with ``sig`` (SIGKILL: the machine is lost): every process of it
        (raylet, its workers and their ffmpeg), by id."""
        process = self.nodes.pop(name)
        for pid in node_processes(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        deadline = time.monotonic() + 30
        while node_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in node_processes(process.pid):  # one that did not stop on its own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop every node (the head last) and remove their temporary folder."""
        for name in [n for n in self.nodes if n != "head"] + ["head"]:
            if name in self.nodes:
                self.kill(name, signal.SIGTERM)
        shutil.rmtree(self.temp, ignore_errors=True)


def node_processes(leader: int) -> list[int]:
    """The live processes of the node started as ``leader``: its session (Ray's workers have
    process groups of their own) and everything below them (ffmpeg, in sessions of its own)."""
    parent, session = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                pid = int(stat.parent.name)
                parent[pid], session[pid] = int(fields[1]), int(fields[3])
    found = {pid for pid, sid in session.items() if sid == leader}
    grew = True
    while grew:
        below = {pid for pid, ppid in parent.items() if ppid in found} - found
        found |= below
        grew = bool(below)
    return sorted(found)


def enter_own_network() -> int:
    """Put this thread (and every process it starts from now on) in a new network namespace
    with only loopback up (root, Linux): Ray advertises the machine's interface address, so a
    cluster that must stay on loopback (tests, benchmarks) runs there. Returns a descriptor
    of the namespace left, for :func:`leave_own_network`.

    Raises:
        ClusterError: not root, or the kernel refuses.
    """
    import ctypes
    import fcntl
    import socket
    import struct

    if os.geteuid() != 0:
        raise ClusterError("a network namespace of its own needs root")
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    if libc.unshare(CLONE_NEWNET) != 0:
        os.close(home)
        raise ClusterError(f"unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())}")
    # ip link set lo up, by the ioctls it makes (no iproute2 needed)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sh", b"lo", flags | 0x1))  # SIOCSIFFLAGS, UP
    return home


def leave_own_network(home: int) -> None:
    """Back to the namespace :func:`enter_own_network` left."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    try:
        if libc.setns(home, CLONE_NEWNET) != 0:
            raise ClusterError(f"setns failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(home)


CLONE_NEWNET = 0x40000000
