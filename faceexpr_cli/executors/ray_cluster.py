"""``--executor ray``: shards of items as Ray tasks, on a cluster or on a local one started for the run.

Each shard runs the job's ``run_item`` (the same per-item core as the local path) for its items, storing each
item's result as a checkpoint (``shards.Checkpoints``) before moving on, and returns the results. Ray retries a
shard whose worker died (``Resources.max_retries``); the retry takes the finished items from their checkpoints, so
nothing is redone, and the driver hands each item to ``on_result`` once: a shard that fails past every retry
becomes checkpointed results plus ``job.failed`` for the rest, never lost and never twice. Ctrl-C submits nothing
more, lets the running shards finish (``_drain``), records them, and re-raises, so the command records what
finished.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from typing import Any

from faceexpr_cli.console import log, progress
from faceexpr_cli.errors import DependencyError, UsageError
from faceexpr_cli.executors.base import EXECUTORS, ExecutorSpec, ItemJob, OnResult, RunSummary
from faceexpr_cli.executors.shards import Checkpoints, auto_shard_size, keys_unique, new_run_id, plan_shards

STOP_WAIT_S = 10.0  # after Ctrl-C, how long cancelled shards get to end
POLL_S = 0.5  # how often the driver looks for finished shards and counts the items finished across the cluster


def import_ray():
    try:
        import ray
    except ImportError:
        raise DependencyError("--executor ray needs Ray, which is not installed",
                              "pip install 'faceexpr[ray]'") from None
    return ray


def connect(spec: ExecutorSpec) -> bool:
    """Join the cluster ``spec.address`` names, or start a local one with ``spec.workers`` CPUs; True when this
    call started (and so must stop) Ray. A Ray already initialised in this process (a test, a notebook) is used."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    try:
        if spec.address:
            ray.init(address=spec.address, **kwargs)
        else:
            ray.init(num_cpus=spec.workers, **kwargs)
    except ConnectionError as exc:
        raise UsageError(f"--ray-address {spec.address}: cannot connect ({exc})",
                         "start the cluster with `ray start --head`, or leave --ray-address out for a local one"
                         ) from None
    return True


def _node() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # pragma: no cover - outside a Ray worker
        return socket.gethostname()


def run_shard(job: ItemJob, items: list[Any], keys: list[str], checkpoints: Checkpoints) -> list[tuple]:
    """One shard in a Ray worker: (key, result, node, seconds, from_checkpoint) per item, in order."""
    node = _node()
    results = []
    for item, key in zip(items, keys, strict=True):
        stored = checkpoints.get(key)
        if stored is not None:  # finished by an earlier attempt of this shard
            result, done_on, seconds = stored
            results.append((key, result, done_on, seconds, True))
            continue
        t0 = time.perf_counter()
        result = job.run_item(item)
        seconds = time.perf_counter() - t0
        checkpoints.put(key, (result, node, seconds))
        results.append((key, result, node, seconds, False))
    return results


def _drain(ray, pending: dict) -> list:
    """After Ctrl-C: let the shards already running end on their own (up to ``STOP_WAIT_S``) and return those
    that did, so their results are recorded. Nothing is cancelled: Ray 2.60's core worker can abort when a
    cancel races a task's completion ("Tried to complete task that was not pending"), which turned a clean
    Ctrl-C into a crash. Shards still running after the wait end with the job when the driver exits; their
    items are redone on resume (finished items are taken from their checkpoints)."""
    if not pending:
        return []
    log.warning("interrupted: waiting up to %.0f s for %d running shard(s) to finish", STOP_WAIT_S, len(pending))
    done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=STOP_WAIT_S)
    return done


@EXECUTORS.register("ray")
class RayExecutor:
    require = staticmethod(import_ray)

    def __init__(self, spec: ExecutorSpec):
        self.spec = spec

    def run(self, job: ItemJob, items: list[Any], on_result: OnResult, *, label: str = "items") -> RunSummary:
        ray = import_ray()
        keys = [job.key(it) for it in items]
        if not keys_unique(keys):
            raise ValueError("item keys must be unique")
        started = connect(self.spec)
        summary = RunSummary("ray")
        checkpoints = Checkpoints(job.checkpoint_root(), new_run_id())
        t0 = time.perf_counter()
        try:
            self._run(ray, job, items, keys, checkpoints, on_result, summary, label)
        finally:
            summary.wall_seconds = time.perf_counter() - t0
            checkpoints.remove()
            if started:
                ray.shutdown()
        return summary

    def _run(self, ray, job, items, keys, checkpoints, on_result, summary, label) -> None:
        res = job.resources
        have = ray.cluster_resources()
        if res.num_gpus and have.get("GPU", 0) < res.num_gpus:  # the tasks would wait for ever
            raise UsageError("the Ray cluster has no GPU for --device cuda", "use --device cpu, or add GPU nodes")
        cpus = max(1, int(have.get("CPU", 1) // max(res.num_cpus, 1e-3)))
        size = self.spec.shard_size or auto_shard_size(len(items), cpus)
        shards = plan_shards(len(items), size)
        summary.shards = len(shards)
        options: dict[str, Any] = {"num_cpus": res.num_cpus, "max_retries": res.max_retries, "retry_exceptions": False}
        if res.num_gpus:
            options["num_gpus"] = res.num_gpus
        if res.memory_mb and res.memory_mb * 1024 * 1024 <= have.get("memory", 0):  # a hint, never a deadlock
            options["memory"] = res.memory_mb * 1024 * 1024
        remote = ray.remote(run_shard).options(**options)
        job_ref = ray.put(job)
        queue = deque(shards)
        pending: dict[Any, Any] = {}
        ordered = getattr(job, "ordered", False)
        buffer: dict[int, tuple] = {}
        delivered: set[int] = set()
        next_pos = 0

        def deliver(pos: int, entry: tuple) -> None:
            _, result, node, seconds, reused = entry
            if pos in delivered:  # an item is handed on once, whatever happened to its shard
                return
            delivered.add(pos)
            summary.retried_items += bool(reused)
            summary.add(node, seconds)
            on_result(items[pos], result)

        def flush() -> None:
            nonlocal next_pos
            while next_pos in buffer:
                deliver(next_pos, buffer.pop(next_pos))
                next_pos += 1

        def finished(shard, ref) -> list[tuple[int, tuple]]:
            try:
                return list(zip(shard.positions, ray.get(ref), strict=True))
            except ray.exceptions.RayError as exc:  # the worker died past every retry, or the task raised
                reason = f"ray worker failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                log.warning("shard %d: %s", shard.index, reason)
                out = []
                for pos in shard.positions:
                    stored = checkpoints.get(keys[pos])
                    if stored is not None:
                        out.append((pos, (keys[pos], stored[0], stored[1], stored[2], True)))
                    else:
                        summary.failed_items += 1
                        out.append((pos, (keys[pos], job.failed(items[pos], reason), "-", 0.0, False)))
                return out

        limit = cpus  # shards in flight: one per CPU keeps them busy, and Ctrl-C waits for at most that many
        # counting the checkpoints lists a folder of up to len(items) files: rarer for big runs
        count_every, last_count = max(POLL_S, len(items) / 10_000), 0.0
        try:
            with progress() as bar:
                task = bar.add_task(f"{label} (ray, {cpus} CPUs)", total=len(items))
                while queue or pending:
                    while queue and len(pending) < limit:
                        shard = queue.popleft()
                        ref = remote.remote(job_ref, [items[p] for p in shard.positions],
                                            [keys[p] for p in shard.positions], checkpoints)
                        pending[ref] = shard
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                    for ref in ready:
                        for pos, entry in finished(pending.pop(ref), ref):
                            if ordered:
                                buffer[pos] = entry
                            else:
                                deliver(pos, entry)
                        flush()
                    if time.monotonic() - last_count >= count_every:  # one listing of the run's checkpoints
                        last_count = time.monotonic()
                        bar.update(task, completed=max(len(delivered), min(len(items), checkpoints.count())))
                bar.update(task, completed=len(delivered))
        except KeyboardInterrupt:
            flush()  # results that arrived in order are kept
            for ref in _drain(ray, pending):
                for pos, entry in finished(pending.pop(ref), ref):
                    if ordered:
                        buffer[pos] = entry
                    else:
                        deliver(pos, entry)
            flush()
            raise
        if len(delivered) != len(items):  # pragma: no cover - every shard returns or is recorded as failed
            raise RuntimeError(f"ray executor: {len(items) - len(delivered)} items without a result")
