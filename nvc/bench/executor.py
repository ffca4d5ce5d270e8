"""Where independent jobs run: here, one after another, or as Ray tasks on a cluster.

`nvc bench` (one job per sequence x codec x rate point) and `nvc batch` (one job per
input video) both hand their jobs to `run_jobs`. Without a Ray address the jobs run in
this process, in order. With one (`--ray ADDRESS`), each job is a Ray task
(https://docs.ray.io): `local` starts a Ray instance on this machine, `auto` joins the
cluster this machine belongs to, `HOST:PORT` a cluster's head node and
`ray://HOST:10001` a cluster through Ray Client. The caller gets each result back in
this process as soon as it is ready, writes it, and records it in its resumable state,
so a run through Ray leaves the same files as a local run, and either resumes the other.

Ray is an optional dependency (`pip install 'nvc[ray]'`); every node needs nvc installed
in the same version. Jobs read their inputs by path, so inputs must be readable at the
same path on every node (shared storage), or be shipped in the job's arguments (the
benchmark does that: it puts the decoded frames into Ray's object store).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from nvc.errors import NvcError

J = TypeVar("J")
R = TypeVar("R")

LOCAL = "local"  # the --ray address that starts a Ray instance on this machine


@dataclass(frozen=True)
class RayTarget:
    """A Ray cluster to run jobs on."""

    address: str  # "local", "auto", "HOST:PORT" or "ray://HOST:PORT" (see the module doc)
    num_cpus: int | None = None  # CPUs of a "local" instance (None: Ray's default, all)
    task_cpus: float = 1.0  # CPUs each job reserves (Ray runs as many at once as fit)


def import_ray() -> Any:
    """The ray module, or an NvcError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise NvcError("--ray needs Ray, which is not installed: pip install 'nvc[ray]'") from None
    return ray


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT or ray://HOST:PORT nobody answers (Ray retries for minutes)."""
    if address in (LOCAL, "auto"):
        return
    where = address.removeprefix("ray://")
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit():
        raise NvcError(f"--ray {address!r}: expected local, auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise NvcError(f"cannot reach Ray at {address}: {e.strerror or e}") from None


def preflight(target: RayTarget) -> None:
    """Fail before any work (or output folder) when Ray is missing or the address is dead."""
    import_ray()
    check_reachable(target.address)


@contextmanager
def ray_session(target: RayTarget) -> Iterator[Any]:
    """Ray, connected to `target` for the duration (an existing connection is reused)."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        check_reachable(target.address)
        address = None if target.address == LOCAL else target.address
        try:
            ray.init(
                address=address,
                num_cpus=target.num_cpus if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,  # no banner lines around nvc's own output
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise NvcError(
                f"cannot connect to Ray at {target.address!r}: {' '.join(str(e).split())}"
            ) from None
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _cause(error: BaseException) -> BaseException:
    """The job's own exception inside a Ray task error."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def run_jobs(
    fn: Callable[..., R],
    jobs: Sequence[J],
    *,
    on_done: Callable[[int, R], None],
    on_error: Callable[[int, BaseException], None],
    ray: RayTarget | None = None,
    shared: Any = None,
) -> None:
    """Run `fn(job)` (or `fn(job, shared)` when `shared` is given) for every job.

    `on_done(index, result)` and `on_error(index, exception)` are called in this process
    as jobs finish: in order when local, in completion order on Ray. One failing job
    never stops the others. `shared` is one large argument common to all jobs (the
    benchmark's frames): on Ray it is put into the object store once.
    """
    if ray is None:
        for i, job in enumerate(jobs):
            try:
                result = fn(job) if shared is None else fn(job, shared)
            except Exception as e:  # reported, and the other jobs go on
                on_error(i, e)
            else:
                on_done(i, result)
        return
    if not jobs:
        return
    with ray_session(ray) as rt:
        task = rt.remote(num_cpus=ray.task_cpus, max_retries=0)(fn)
        shared_ref = rt.put(shared) if shared is not None else None
        pending = {
            (task.remote(job) if shared_ref is None else task.remote(job, shared_ref)): i
            for i, job in enumerate(jobs)
        }
        try:
            while pending:
                ready, _ = rt.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        result = rt.get(ref)
                    except Exception as e:  # the task raised (or its worker died)
                        on_error(i, _cause(e))
                    else:
                        on_done(i, result)
        finally:
            for ref in pending:  # interrupted: nothing left running on the cluster
                rt.cancel(ref, force=True)
