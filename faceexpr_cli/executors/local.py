"""``--executor local``: the items one after another in this process (today's path of every batch command)."""

from __future__ import annotations

import socket
import time
from typing import Any

from faceexpr_cli.console import progress
from faceexpr_cli.executors.base import EXECUTORS, ExecutorSpec, ItemJob, OnResult, RunSummary


@EXECUTORS.register("local")
class LocalExecutor:
    def __init__(self, spec: ExecutorSpec):
        self.spec = spec

    def run(self, job: ItemJob, items: list[Any], on_result: OnResult, *, label: str = "items") -> RunSummary:
        summary = RunSummary("local")
        host = socket.gethostname()
        t0 = time.perf_counter()
        try:
            with progress() as bar:
                task = bar.add_task(label, total=len(items))
                for item in items:
                    t = time.perf_counter()
                    on_result(item, job.run_item(item))
                    summary.add(host, time.perf_counter() - t)
                    bar.advance(task)
        finally:
            summary.wall_seconds = time.perf_counter() - t0
        return summary
