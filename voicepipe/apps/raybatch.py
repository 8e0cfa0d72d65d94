"""Batch synthesis past one machine: a pool of Ray actors, each with its own loaded pipeline.

Each actor (:class:`SynthWorker`) loads the LLM and TTS once and writes finished files
straight into the out dir, which must be a path every worker reaches (a shared filesystem
on a real cluster). The driver keeps the schedule and the journal: at most ``workers x
concurrency`` items are in flight, the next is sent only when one comes back
(backpressure), and an item whose worker died is sent again, to another worker when there
is one, up to ``retries`` times. A provider error is an answer, not a crash: it is recorded
as in the local batch and not retried. Ray is an optional extra (``voicepipe[ray]``),
imported only here.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import os
import socket
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from voicepipe.apps.batch import BatchItem, BatchResult, remove_partials, synthesize_one
from voicepipe.audio.sinks.files import file_sink
from voicepipe.audio.sinks.paths import check_encoder
from voicepipe.errors import ConfigError, ProviderError, VoicepipeError
from voicepipe.pipeline import Pipeline

if TYPE_CHECKING:
    from voicepipe.apps.resume import Journal

__all__ = ["SynthWorker", "connect", "probe_out_dir", "synthesize_batch_ray"]

PipelineFactory = Callable[[], Pipeline]


def import_ray() -> Any:
    """Ray, or a ConfigError that says how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ConfigError(
            "--ray needs Ray, which is not installed: pip install 'voicepipe[ray]'"
        ) from None


def probe_out_dir(out_dir: str | Path) -> None:
    """Fail with the reason if this machine cannot create files in ``out_dir``.

    Run on every worker: the driver may see the folder while a worker on another node does
    not (no shared filesystem there), or sees it read-only.
    """
    host = socket.gethostname()
    out = Path(out_dir)
    if not out.is_dir():
        raise ConfigError(
            f"a worker on {host} cannot see the out dir {out}: it must be a path every "
            "worker reaches (a shared filesystem)"
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".voicepipe-probe-", dir=out)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise ConfigError(
            f"a worker on {host} cannot write to the out dir {out}: {exc.strerror or exc}"
        ) from exc


class SynthWorker:
    """One Ray actor: the pipeline loaded once, items written one after another.

    Ray calls its methods on plain threads (``max_concurrency`` of them); the pipeline lives
    on one event loop of its own, run by an anyio blocking portal, so those threads share
    one loaded model. A failure to start is kept and told by :meth:`ready`, so the driver
    gets a one-line reason instead of a dead actor.
    """

    def __init__(
        self,
        make_pipe: PipelineFactory,
        out_dir: str,
        bitrate: str | None,
        smooth_joins: bool,
        pause_ms: float,
    ) -> None:
        self.bitrate, self.smooth_joins, self.pause_ms = bitrate, smooth_joins, pause_ms
        self.error: tuple[str, str] | None = None
        self._portal_cm: Any = None
        self._pipe_cm: Any = None
        self._portal: BlockingPortal | None = None
        self._pipe: Pipeline | None = None
        try:
            probe_out_dir(out_dir)
            self._portal_cm = start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
            self._pipe_cm = self._portal.wrap_async_context_manager(make_pipe())
            self._pipe = self._pipe_cm.__enter__()
        except VoicepipeError as exc:
            kind = "config" if isinstance(exc, ConfigError) else "provider"
            self.error = (kind, str(exc) or type(exc).__name__)
            self.close()

    def ready(self) -> dict[str, Any]:
        """Where this worker runs, and why it cannot work (None when it can)."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "error": self.error}

    def synthesize(self, item: BatchItem) -> BatchResult:
        if self._portal is None or self._pipe is None:
            raise RuntimeError("this worker did not start")
        return self._portal.call(
            synthesize_one, self._pipe, item, self.bitrate, self.smooth_joins, self.pause_ms
        )

    def close(self) -> None:
        """Unload the models and stop the event loop (Ray kills the process after)."""
        for cm in (self._pipe_cm, self._portal_cm):
            if cm is not None:
                try:
                    cm.__exit__(None, None, None)
                except Exception:
                    logging.getLogger(__name__).exception("closing the worker")
        self._pipe_cm = self._portal_cm = self._portal = self._pipe = None


def connect(address: str | None, cpus_needed: float) -> None:
    """Join the Ray cluster at ``address``, or start a local one sized for the workers.

    :raises ConfigError: Ray is missing, the address cannot be reached, or the cluster has
        fewer CPUs than the workers ask for (they would wait forever).
    """
    # Ray's C++ core logs every retry to stderr; errors reach the user as one line anyway.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    ray = import_ray()
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    if address is None:
        ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil(cpus_needed)), **options)
        return
    _check_reachable(address)
    try:
        ray.init(address=address, **options)
    except Exception as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {_reason(exc)}") from exc
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if cpus < cpus_needed:
        ray.shutdown()
        raise ConfigError(
            f"the Ray cluster at {address} has {cpus:g} CPUs; the workers need {cpus_needed:g} "
            "(lower --workers or --worker-cpus)"
        )


def _check_reachable(address: str) -> None:
    """Knock first, so a wrong address fails in seconds instead of after Ray's retries.

    Ray's head (and its ``ray://`` client server) speak gRPC, that is HTTP/2: a server there
    answers the HTTP/2 preface with a SETTINGS frame. Anything else (nothing listening, a web
    server, a closed firewall) would leave ``ray.init`` retrying for minutes.
    """
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"bad Ray address {address!r}: give HOST:PORT (or ray://HOST:PORT)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as conn:
            conn.sendall(_HTTP2_PREFACE)
            reply = b""
            while len(reply) < 9:
                more = conn.recv(9 - len(reply))
                if not more:
                    break
                reply += more
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {reason}") from exc
    if len(reply) < 9 or reply[3] != 0x04:  # a frame header whose type is SETTINGS
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: something answers there, but not Ray "
            "(give the head node's GCS port, 6379 by default, or ray://HOST:10001)"
        )


# The client connection preface of HTTP/2 (RFC 9113, 3.4) and an empty SETTINGS frame.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


@dataclass
class _Work:
    position: int
    item: BatchItem
    attempts: int = 0
    last_worker: int | None = None


class _WorkQueue:
    """Items waiting for a worker; one that failed on a worker waits for another one."""

    def __init__(self, items: Sequence[BatchItem], workers: int) -> None:
        self.pending = deque(_Work(p, item) for p, item in enumerate(items))
        self.unfinished = len(items)
        self.workers = workers
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def take(self, worker: int) -> _Work | None:
        while self.unfinished:
            for i, work in enumerate(self.pending):
                if work.last_worker != worker or self.workers == 1:
                    del self.pending[i]
                    return work
            await self._changed.wait()
        return None

    def again(self, work: _Work, worker: int) -> None:
        work.last_worker = worker
        self.pending.appendleft(work)
        self._notify()

    def finished(self) -> None:
        self.unfinished -= 1
        self._notify()


async def _get(ray: Any, ref: Any) -> Any:
    """The value of ``ref`` without blocking the event loop; cancellable within 0.2 s."""
    while True:
        ready, _ = await anyio.to_thread.run_sync(functools.partial(ray.wait, [ref], timeout=0.2))
        if ready:
            return ray.get(ref)


async def synthesize_batch_ray(
    make_pipe: PipelineFactory,
    items: Sequence[BatchItem],
    *,
    address: str | None = None,
    workers: int = 2,
    concurrency: int = 1,
    worker_cpus: float = 1.0,
    retries: int = 2,
    bitrate: str | None = None,
    smooth_joins: bool = True,
    pause_ms: float = 0.0,
    on_done: Callable[[BatchResult], None] | None = None,
    on_event: Callable[[str], None] | None = None,
    journal: Journal | None = None,
) -> list[BatchResult]:
    """Write every item's answer on a pool of Ray actors; results in item order.

    ``make_pipe`` is sent to each worker (it must pickle: a module-level function or a
    ``functools.partial`` of one) and called there once. ``address`` None starts a local
    cluster (unless :func:`connect` was called first); the cluster is left at the end.
    ``concurrency`` items run at once on each worker. ``on_event`` hears about workers
    starting and dying. Rows go to ``journal`` as items finish, as in
    :func:`~voicepipe.apps.batch.synthesize_batch`.

    :raises ConfigError: no Ray, an unreachable cluster, or a worker that cannot write the
        out dir or load its models with these settings.
    """
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if retries < 0:
        raise ConfigError("--retries must not be negative")
    if not worker_cpus > 0:
        raise ConfigError("--worker-cpus must be more than 0")
    for item in items:  # a bad format or bitrate, or no ffmpeg, fails before any work
        file_sink(item.path, bitrate=bitrate)
        check_encoder(item.path)
    if not items:
        return []
    ray = import_ray()
    say = on_event or (lambda _: None)
    out_dir = str(items[0].path.parent)
    if not ray.is_initialized():  # the caller may have joined already, to fail early
        await anyio.to_thread.run_sync(connect, address, workers * worker_cpus)
    try:
        actor_class = ray.remote(SynthWorker).options(
            num_cpus=worker_cpus, max_concurrency=concurrency, max_restarts=0
        )
        queue = _WorkQueue(items, workers)
        results: list[BatchResult | None] = [None] * len(items)

        async def finish(work: _Work, result: BatchResult) -> None:
            if journal is not None:
                await journal.append(result)
            results[work.position] = result
            queue.finished()
            if on_done is not None:
                on_done(result)

        async def start(index: int) -> Any:
            actor = actor_class.remote(make_pipe, out_dir, bitrate, smooth_joins, pause_ms)
            info = await _get(ray, actor.ready.remote())
            if info["error"] is not None:
                kind, message = info["error"]
                ray.kill(actor)
                raise (ConfigError if kind == "config" else ProviderError)(message)
            say(f"worker {index} ready on {info['host']} (pid {info['pid']})")
            return actor

        async def worker(index: int) -> None:
            actor = await start(index)
            generation = 0
            restarting = anyio.Lock()

            async def lane() -> None:
                nonlocal actor, generation
                while (work := await queue.take(index)) is not None:
                    mine, seen = actor, generation
                    try:
                        result = await _get(ray, mine.synthesize.remote(work.item))
                    except ray.exceptions.RayError as exc:
                        died = isinstance(exc, ray.exceptions.RayActorError)
                        reason = "its worker died" if died else _first_line(exc)
                        work.attempts += 1
                        if work.attempts > retries:
                            failed = BatchResult(
                                work.item.number, work.item.prompt, work.item.path.name
                            )
                            failed.id = work.item.id
                            failed.error = f"gave up after {work.attempts} attempts: {reason}"
                            await finish(work, failed)
                        else:
                            say(f"{work.item.path.name}: {reason}; trying again")
                            queue.again(work, index)
                        if died:
                            async with restarting:
                                if generation == seen:  # the first lane to notice restarts it
                                    say(f"worker {index} died; starting a new one")
                                    actor = await start(index)
                                    generation += 1
                        continue
                    await finish(work, result)

            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(lane)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close, ray, actor)

        async with anyio.create_task_group() as tg:
            for index in range(workers):
                tg.start_soon(worker, index)
        # A killed worker leaves its half-written temporary file; its item was done again.
        await anyio.to_thread.run_sync(remove_partials, items)
        return [r for r in results if r is not None]
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(ray.shutdown)


def _close(ray: Any, actor: Any) -> None:
    """Let the worker unload its models, then end it."""
    try:
        ray.get(actor.close.remote(), timeout=30)
    except Exception:
        pass
    ray.kill(actor)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _reason(exc: BaseException) -> str:
    """The outer message and, when Ray wrapped one, the first sentence of the root cause."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    outer = _first_line(exc)
    if "AuthToken" in str(root) or "AuthenticationError" in str(root):
        return (
            f"{outer} (the cluster uses token authentication: set RAY_AUTH_MODE=token, with "
            "its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
        )
    if root is exc:
        return outer
    cause = _first_line(root).split(". ")[0].rstrip(".")
    return f"{outer} ({cause})"
