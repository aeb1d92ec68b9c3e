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
from rich.text import Text

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


# Headers of columns whose values identify a row: never cut, folded or wrapped, whatever the width.
KEY_HEADERS = frozenset({"name", "card", "source", "path", "file", "clip", "key", "step", "part", "model", "video",
                         "checkpoint", "report", "url", "dest", "output"})
_STRICT, _TOKEN, _TEXT = 0, 1, 2
_NARROW = 10  # the narrowest a non-key column gets on a terminal


def _looks_like_path(value: str) -> bool:
    """A path or URL, which may hold spaces; a message that mentions one ("/a/b.mp4: not a video") is prose."""
    if "/" not in value and "\\" not in value:
        return False
    return not any(ch.isspace() for ch in value) or (value.startswith(("/", "~", "./", "../")) and ": " not in value)


def _kind(index: int, header: str, values: list[str]) -> int:
    """_STRICT: the first column, an identifying header, or paths; _TOKEN: single words (names, numbers, ids),
    kept whole while the table fits; _TEXT: prose, wrapped at spaces."""
    values = [v for v in values if v]
    if index == 0 or header.strip().lower() in KEY_HEADERS or (values and all(map(_looks_like_path, values))):
        return _STRICT
    return _TOKEN if all(not any(ch.isspace() for ch in v) for v in values) else _TEXT


def _build(columns: list[str], cells: list[list[str]], kinds: list[int], longest: list[int], whole: int,
           title: str | None) -> Table:
    table = Table(title=title)
    for col, kind, size in zip(columns, kinds, longest, strict=True):
        keep = kind <= whole
        table.add_column(col, no_wrap=keep, overflow="fold", min_width=size if keep else None)
    for row in cells:
        table.add_row(*map(Text, row))  # values are data, never rich markup ("[/tmp/x]" is a path)
    return table


def print_table(rows: Iterable[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    """A table on stdout that never cuts a value.

    The first column, identifying columns (``name``, ``path``, ... see ``KEY_HEADERS``) and columns of paths are
    never wrapped or shortened; single-word columns stay whole while the table fits the terminal and fold
    otherwise; prose wraps at spaces; no character is ever replaced by an ellipsis. On a terminal the table
    grows past its width (the terminal wraps the lines) only when the key columns alone are wider. Into a pipe
    or a file each row is one line, however wide, so ``grep`` and ``cut`` see whole values.
    """
    from rich.cells import cell_len
    from rich.measure import Measurement
    from rich.segment import Segments

    cells = [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    kinds = [_kind(i, col, [row[i] for row in cells]) for i, col in enumerate(columns)]
    longest = [max([cell_len(col), *(cell_len(line) for row in cells for line in row[i].splitlines())])
               for i, col in enumerate(columns)]
    unlimited = out.options.update_width(1 << 16)
    table = _build(columns, cells, kinds, longest, _TOKEN, title)
    if out.is_terminal:
        if Measurement.get(out, unlimited, table).minimum > out.width:
            table = _build(columns, cells, kinds, longest, _STRICT, title)
        # key columns whole, every other column at least _NARROW characters, plus padding and borders
        need = sum(n if k == _STRICT else min(n, _NARROW) for n, k in zip(longest, kinds, strict=True))
        need += 3 * len(columns) + 1
        width = max(out.width, need)
    else:
        width = Measurement.get(out, unlimited, table).maximum
        if title and cell_len(title) > width:  # a title wider than the table would wrap inside it: one line above
            out.print(title, soft_wrap=True, markup=False)
            table = _build(columns, cells, kinds, longest, _TOKEN, None)
    lines = out.render_lines(table, out.options.update_width(width), pad=False, new_lines=True)
    out.print(Segments([seg for line in lines for seg in line]), crop=False, end="")
