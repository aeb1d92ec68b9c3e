"""Executors: where a batch command's items run (``local``: this process; ``ray``: a Ray cluster).

See ``base.py`` for the contract (``ItemJob``, ``run_items``) and ``docs/scale.md`` for running on many nodes.
"""

from faceexpr_cli.executors.base import (
    EXECUTORS,
    ExecutorSpec,
    ItemJob,
    Resources,
    RunSummary,
    log_summary,
    run_items,
)

__all__ = ["EXECUTORS", "ExecutorSpec", "ItemJob", "Resources", "RunSummary", "log_summary", "run_items"]
