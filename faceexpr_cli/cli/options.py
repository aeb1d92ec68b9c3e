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
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")]
