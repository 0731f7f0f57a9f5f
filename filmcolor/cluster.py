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

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
        f"cannot reach a Ray cluster at '{address}' ({reason}); start one with 'ray start "
        "--head' (and 'ray start --address HEAD:6379' on the other machines), or give its "
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
            f"cluster address '{address}' is not auto, host:port or ray://host:port; give the "
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
        try:
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
            raise _unreachable(address, " ".join(str(err).split())[:200]) from None
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
