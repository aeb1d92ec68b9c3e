"""Turning ``fx crop`` arguments (videos, directories, manifests) into a list of work items.

A file named on the command line is always tried (if it is not a video, its row says so). Inside a directory,
only files with a video extension are work; the others get a ``skipped`` row, so a README next to the videos
neither fails the run nor disappears silently. A manifest (Parquet, CSV, or a text file with one path per line)
lists videos in a ``path``, ``video``, ``source`` or ``file`` column; relative paths are relative to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from faceexpr_cli.errors import DataError, MissingFileError
from faceexpr_cli.inputs import unique_by_source

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".flv",
                  ".wmv", ".3gp", ".ogv"}
MANIFEST_SUFFIXES = {".parquet", ".csv", ".txt", ".lst"}
PATH_COLUMNS = ("path", "video", "source", "file", "video_path")


@dataclass(frozen=True)
class Item:
    source: str  # absolute path
    skip: str | None = None  # why this item is not processed (not a video file)

    @property
    def source_id(self) -> str:
        """Stable id of a source path: names its clip folder and its manifest part."""
        return hashlib.sha1(self.source.encode("utf-8")).hexdigest()[:12]


def _from_manifest(path: Path) -> list[Item]:
    suffix = path.suffix.lower()  # LIST.TXT is a manifest too (expand_inputs matches suffixes in any case)
    if suffix in (".txt", ".lst"):
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        values = [ln for ln in lines if ln and not ln.startswith("#")]
    else:
        import pandas as pd

        try:
            df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        except Exception as exc:
            raise DataError(f"{path}: cannot read the manifest ({type(exc).__name__}: {exc})") from exc
        col = next((c for c in PATH_COLUMNS if c in df.columns), None)
        if col is None:
            raise DataError(f"{path}: no video column", f"name one of the columns {', '.join(PATH_COLUMNS)}")
        values = [str(v) for v in df[col].dropna().unique()]
    items = []
    for v in values:
        p = Path(v).expanduser()
        p = p if p.is_absolute() else path.parent / p
        items.append(Item(str(p.resolve())))
    return items


def expand_inputs(inputs: list[str | Path], exclude: str | Path | None = None) -> list[Item]:
    """Work items in a stable order, each source once; files under ``exclude`` (the output) are left out."""
    items: list[Item] = []
    skip_root = Path(exclude).resolve() if exclude is not None else None
    for raw in inputs:
        path = Path(raw).expanduser()
        if not path.exists():
            raise MissingFileError(path, "input")
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                if skip_root is not None and f.resolve().is_relative_to(skip_root):
                    continue
                kind = None if f.suffix.lower() in VIDEO_SUFFIXES else f"not a video file ({f.suffix or 'no extension'})"
                items.append(Item(str(f.resolve()), kind))
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            items.extend(_from_manifest(path))
        else:
            items.append(Item(str(path.resolve())))
    return unique_by_source(items)
