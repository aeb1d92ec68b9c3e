"""Worker processes for ``fx crop --workers N``, and how they stop.

Each worker builds its backend once (forked workers inherit the parent's prepared one), ignores SIGINT and
watches the parent's stop ``Event`` (``crop/stop.py``). On Ctrl-C the parent sets the event, cancels the queued
videos (``cancel_futures``), waits a few seconds for the running ones to give up at their next frame, and
terminates any that do not.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from faceexpr_cli.console import log
from faceexpr_cli.crop import stop
from faceexpr_cli.crop.inputs import Item
from faceexpr_cli.crop.options import CropOptions

_backend = None  # per worker process

STOP_WAIT_S = 5.0  # how long running videos get to stop by themselves before their workers are terminated


def _work(item: Item, out: str, opts: CropOptions) -> list[dict]:
    from faceexpr_cli.crop.process import run_one

    global _backend
    if _backend is None and not item.skip:
        from faceexpr_cli.face import get_backend

        _backend = get_backend(opts.backend, **opts.backend_options)
    return run_one(item, Path(out), opts, _backend)


class WorkerPool:
    """``with WorkerPool(n, backend) as pool: for item, fut in pool.run(items, out, opts): ...``

    At most one video per worker is handed to the executor at a time (the rest wait here), so on Ctrl-C
    nothing sits in the executor's call queue: the queued videos are simply never submitted.
    """

    def __init__(self, workers: int, backend):
        global _backend
        # Fork (Linux) before the progress bar starts its thread, so workers inherit the loaded models instead
        # of re-importing everything; elsewhere, spawn.
        _backend = backend
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self.event = ctx.Event()
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=stop.watch,
                                            initargs=(self.event,))
        self.workers = workers
        self.futures: dict[Future, Item] = {}

    def run(self, items: list[Item], out: Path, opts: CropOptions):
        """(item, future) pairs as they finish; the first videos are submitted before this returns (so the
        workers fork before a progress bar starts its thread)."""
        queue = list(reversed(items))
        pending: set[Future] = set()

        def top_up() -> None:
            while queue and len(pending) < self.workers:
                it = queue.pop()
                fut = self.executor.submit(_work, it, str(out), opts)
                self.futures[fut] = it
                pending.add(fut)

        top_up()

        def finished():
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    pending.discard(fut)
                    top_up()
                    yield self.futures[fut], fut

        return finished()

    def stop(self) -> None:
        """Cancel what has not started; ask running videos to stop; terminate workers that do not."""
        self.event.set()
        procs = list((getattr(self.executor, "_processes", None) or {}).values())  # shutdown() forgets them
        self.executor.shutdown(wait=False, cancel_futures=True)
        running = [f for f in self.futures if not f.done()]
        _, late = wait(running, timeout=STOP_WAIT_S)
        if late:
            log.warning("terminating %d crop worker(s) that did not stop", len(late))
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.terminate()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)
