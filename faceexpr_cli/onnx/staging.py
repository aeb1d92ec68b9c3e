"""Atomic exports: build everything in a temporary folder beside the output, move it in only when all of it passed.

A failed or interrupted export into a folder that holds a good export must leave that export as it was: its
``report.json`` and graphs are what ``load_chain``/``fx extract-feats`` trust. ``staging_dir(out)`` makes the
temporary folder (beside ``out``, so the moves are renames on one file system; inside ``out`` when its parent is not
writable), ``swap_in(stage, out)`` moves every file into place with ``report.json`` last, and ``write_failed``
keeps a failed run's report as ``report.failed.json`` without touching the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPORT = "report.json"
FAILED_REPORT = "report.failed.json"


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A fresh temporary folder for an export into ``out``; removed afterwards, whatever happened."""
    out = Path(out)
    prefix = f".{out.resolve().name or 'export'}.fx-export-"
    try:
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=out.resolve().parent))
    except OSError:  # parent not writable (a mount point): stage inside the output folder
        stage = Path(tempfile.mkdtemp(prefix=".fx-export-", dir=out))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def swap_in(stage: Path, out: Path) -> None:
    """Move every file of ``stage`` to the same place under ``out`` (each an atomic rename), ``report.json`` last,
    so a reader never finds a new report that names graphs not yet in place."""
    files = sorted((p for p in stage.rglob("*") if p.is_file()), key=lambda p: (p.relative_to(stage) == Path(REPORT),
                                                                               str(p)))
    for src in files:
        dest = out / src.relative_to(stage)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
    with contextlib.suppress(FileNotFoundError):
        (out / FAILED_REPORT).unlink()  # an earlier failure's report no longer describes this folder


def write_failed(out: Path, report: dict[str, Any]) -> Path:
    """Keep a failed export's report beside the good export it did not replace."""
    path = out / FAILED_REPORT
    write_json(path, report)
    return path
