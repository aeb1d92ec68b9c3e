"""What a batch command hands an executor, and how an executor is chosen.

A batch command (crop, clip, extract-feats) describes its work as an ``ItemJob``: a small picklable object whose
``run_item`` is the same per-item core the local path calls (it writes the item's outputs and returns the item's
result, e.g. its manifest rows). An executor runs the job over the items and calls ``on_result(item, result)``
in the driver as each item's result arrives; the command's own code merges those results into its manifest,
index and stats exactly as a local run does. Executors are registered by name (``EXECUTORS``); adding one is one
file in this package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faceexpr_cli.errors import UsageError
from faceexpr_cli.registry import Registry

EXECUTORS: Registry[type] = Registry("executor", discover="faceexpr_cli.executors")


@dataclass(frozen=True)
class Resources:
    """What one item's task asks of a node (Ray schedules by these; the local executor ignores them)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_mb: int | None = None
    max_retries: int = 3  # times Ray runs a shard again after its worker process (or node) died


@dataclass(frozen=True)
class ExecutorSpec:
    """``--executor NAME --ray-address ADDR --workers N --shard-size K`` as one value."""

    name: str = "local"
    address: str | None = None
    workers: int = 1
    shard_size: int | None = None  # None: chosen from the number of items and workers

    def check(self) -> ExecutorSpec:
        executor = EXECUTORS.get(self.name)  # an unknown name is one line listing the known ones
        if hasattr(executor, "require"):  # a missing package is one line before any folder is made
            executor.require()
        if self.workers < 1:
            raise UsageError("--workers must be >= 1")
        if self.shard_size is not None and self.shard_size < 1:
            raise UsageError("--shard-size must be >= 1")
        if self.address and self.name == "local":
            raise UsageError("--ray-address needs --executor ray")
        return self

    @property
    def distributed(self) -> bool:
        return self.name != "local"


class ItemJob(Protocol):
    """A batch command's work, runnable on any executor. Must pickle (Ray sends it to every worker)."""

    resources: Resources

    def key(self, item: Any) -> str:
        """Stable, file-name-safe id of an item (a retried shard finds the items it already finished by it)."""

    def run_item(self, item: Any) -> Any:
        """The per-item core: write the item's outputs, return its result. Never raises for a bad item."""

    def failed(self, item: Any, error: str) -> Any:
        """The result recorded for an item whose worker died past every retry."""

    def checkpoint_root(self) -> str:
        """A folder (local, shared, or an fsspec URL) every worker can write, for the run's item checkpoints."""


@dataclass
class NodeStats:
    items: int = 0
    busy_seconds: float = 0.0


@dataclass
class RunSummary:
    """How an executor run went: per node (host) items and busy seconds, and the wall time."""

    executor: str
    wall_seconds: float = 0.0
    shards: int = 0
    retried_items: int = 0  # items whose result came from a checkpoint after a shard was retried
    failed_items: int = 0  # items lost with a worker past every retry (recorded as failed)
    nodes: dict[str, NodeStats] = field(default_factory=dict)

    def add(self, node: str, seconds: float) -> None:
        st = self.nodes.setdefault(node, NodeStats())
        st.items += 1
        st.busy_seconds += seconds

    def to_dict(self) -> dict[str, Any]:
        wall = self.wall_seconds or 1e-9
        return {"executor": self.executor, "wall_seconds": round(self.wall_seconds, 3), "shards": self.shards,
                "retried_items": self.retried_items, "failed_items": self.failed_items,
                "nodes": {n: {"items": s.items, "busy_seconds": round(s.busy_seconds, 3),
                              "items_per_second": round(s.items / wall, 3)} for n, s in sorted(self.nodes.items())}}


OnResult = Callable[[Any, Any], None]


def run_items(spec: ExecutorSpec, job: ItemJob, items: Sequence[Any], on_result: OnResult, *,
              label: str = "items") -> RunSummary:
    """Run ``job`` over ``items`` on the executor ``spec`` names; ``on_result`` sees every item exactly once."""
    executor = EXECUTORS.get(spec.name)(spec)
    return executor.run(job, list(items), on_result, label=label)


def log_summary(summary: RunSummary) -> None:
    from faceexpr_cli.console import log

    d = summary.to_dict()
    for node, s in d["nodes"].items():
        log.info("%s node %s: %d items, %.2f items/s, %.1f s busy", summary.executor, node, s["items"],
                 s["items_per_second"], s["busy_seconds"])
    if summary.retried_items or summary.failed_items:
        log.warning("%s: %d items taken from retried shards' checkpoints, %d lost with their workers (failed rows)",
                    summary.executor, summary.retried_items, summary.failed_items)
