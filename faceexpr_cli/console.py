"""One place for output: results go to stdout, logs and progress bars to stderr."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

log = logging.getLogger("fx")
_quiet = False


def setup_logging(verbosity: int = 0) -> None:
    """verbosity: -1 quiet (warnings only, no progress), 0 info, 1+ debug."""
    global _quiet
    _quiet = verbosity < 0
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    log.handlers.clear()
    handler = RichHandler(console=err, show_path=False, show_time=False, markup=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def progress(transient: bool = False) -> Progress:
    """A rich progress bar on stderr; disabled with -q."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
        disable=_quiet,
    )


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def print_table(rows: Iterable[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)
