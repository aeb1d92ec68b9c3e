"""Options shared by many commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
OutDirOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory.")]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="key.sub=value overrides, e.g. trainer.max_steps=100", show_default=False)
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N, mps or auto.")]
BackendOpt = Annotated[str, typer.Option("--backend", help="torch or onnx.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Worker processes (with --executor ray and no "
                                                         "--ray-address: the CPUs of the local Ray).")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="Where the items run: local (this process and its "
                                                             "workers) or ray (a Ray cluster; docs/scale.md).")]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to join: auto (the one "
                                                   "`ray start` made here) or ray://HOST:10001; default: start a "
                                                   "local Ray for the run.", show_default=False)]
ShardSizeOpt = Annotated[int | None, typer.Option("--shard-size", min=1, help="Items per Ray task (default: "
                                                  "about 4 tasks per CPU, at most 32 items).", show_default=False)]


def executor_spec(executor: str, ray_address: str | None, workers: int, shard_size: int | None):
    """The executor options as one checked value (an unknown name is one line listing the known ones)."""
    from faceexpr_cli.executors import ExecutorSpec

    return ExecutorSpec(executor, ray_address, workers, shard_size).check()
