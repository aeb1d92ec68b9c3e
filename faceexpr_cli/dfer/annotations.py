"""Annotation files for video expression datasets, the format detected from the content.

=============  ================================================  =========================================
format         a line                                            notes
=============  ================================================  =========================================
mae-dfer       ``<path> <label>``                                space separated, no header (MAE-DFER)
dfer-clip      ``<path> <num_frames> <label>``                   space separated, no header (DFER-CLIP)
table          CSV / Parquet with a header ``path,label,...``    extra numeric columns are regression targets
dfew           CSV ``video_name,label``, labels 1-7              DFEW's ``set_N`` split files; label - 1
=============  ================================================  =========================================

A path is a video or a folder of frames, relative to the annotation file (absolute paths are kept). A label is a
class index or a class name of the run's label map. A line that does not parse stops with one error naming the
file and the line.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from faceexpr_cli.errors import DataError, MissingFileError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Entry:
    path: Path
    label: int
    line: int
    frames: int | None = None
    targets: tuple[float, ...] = ()

    @property
    def key(self) -> str:
        return self.path.name


@dataclass
class Annotations:
    source: Path
    format: str
    entries: list[Entry]
    regression: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    def labels(self) -> list[int]:
        return [e.label for e in self.entries]


class AnnotationError(DataError):
    """A line of an annotation file that does not parse (the message names file and line)."""

    def __init__(self, source: Path, line: int, what: str, hint: str | None = None):
        super().__init__(f"{source}:{line}: {what}", hint or "fix or remove the line")


def _label(text: str, classes: list[str], source: Path, line: int, offset: int = 0) -> int:
    text = text.strip()
    try:
        value = int(text) - offset
    except ValueError:
        lowered = [c.lower() for c in classes]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        raise AnnotationError(source, line, f"label '{text[:40]}' is neither a class index nor one of "
                              f"{', '.join(classes)}") from None
    if not 0 <= value < len(classes):
        shown = f"{value + offset}" + (f" (label - {offset} = {value})" if offset else "")
        raise AnnotationError(source, line, f"label {shown} is outside 0..{len(classes) - 1} ({len(classes)} classes)",
                              "check the label map (--labels / data.labels)")
    return value


def _resolve(root: Path, name: str, source: Path, line: int, dfew: bool = False) -> Path:
    if not name:
        raise AnnotationError(source, line, "empty path")
    raw = Path(name)
    base = raw if raw.is_absolute() else root / raw
    candidates = [base]
    if dfew and name.isdigit():
        candidates.append(root / name.zfill(5))
    for c in list(candidates):
        candidates += [c.with_name(c.name + s) for s in VIDEO_SUFFIXES]
    for c in candidates:
        if c.exists():
            return c
    raise AnnotationError(source, line, f"clip '{name}' not found (looked for {base})",
                          "paths are relative to the annotation file")


def _text_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})", "annotation files are text or Parquet") from None
    if "\x00" in text:
        raise DataError(f"{path}: a binary file, not an annotation file")
    return [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]


def _spaced(path: Path, lines: list[tuple[int, str]], classes: list[str]) -> Annotations:
    root = path.parent
    width = len(lines[0][1].split())
    fmt = {2: "mae-dfer", 3: "dfer-clip"}.get(width)
    if fmt is None:
        raise AnnotationError(path, lines[0][0], f"{width} fields; expected '<path> <label>' (MAE-DFER) or "
                              "'<path> <num_frames> <label>' (DFER-CLIP), or a CSV with a header path,label")
    entries = []
    for no, text in lines:
        fields = text.split()
        if len(fields) != width:
            raise AnnotationError(path, no, f"{len(fields)} fields, the file's first line has {width} ({fmt} format)")
        frames = None
        if width == 3:
            try:
                frames = int(fields[1])
            except ValueError:
                raise AnnotationError(path, no, f"num_frames '{fields[1][:20]}' is not an integer") from None
            if frames < 1:
                raise AnnotationError(path, no, f"num_frames {frames} is not positive")
        entries.append(Entry(_resolve(root, fields[0], path, no), _label(fields[-1], classes, path, no), no, frames))
    return Annotations(path, fmt, entries)


def _rows_table(path: Path, header: list[str], rows: list[tuple[int, list[str]]], classes: list[str]) -> Annotations:
    root = path.parent
    cols = [h.strip() for h in header]
    low = [c.lower() for c in cols]
    if "video_name" in low and "label" in low:
        fmt, path_col, offset = "dfew", low.index("video_name"), 1
    elif "path" in low and "label" in low:
        fmt, path_col, offset = "table", low.index("path"), 0
    else:
        raise AnnotationError(path, 1, f"header {cols[:6]} has no 'path,label' (or DFEW's 'video_name,label') columns")
    label_col = low.index("label")
    skip = {path_col, label_col, *(i for i, c in enumerate(low) if c in ("num_frames", "frames", "split", "subject"))}
    reg = [i for i in range(len(cols)) if i not in skip]
    entries = []
    for no, fields in rows:
        if len(fields) != len(cols):
            raise AnnotationError(path, no, f"{len(fields)} fields, the header has {len(cols)}")
        targets = []
        for i in reg:
            try:
                v = float(fields[i])
            except ValueError:
                raise AnnotationError(path, no, f"{cols[i]} '{fields[i][:20]}' is not a number") from None
            if not math.isfinite(v):
                raise AnnotationError(path, no, f"{cols[i]} is {fields[i]}, not a finite number")
            targets.append(v)
        frames = None
        if "num_frames" in low and fields[low.index("num_frames")].strip():
            frames = int(float(fields[low.index("num_frames")]))
        entries.append(Entry(_resolve(root, fields[path_col].strip(), path, no, dfew=fmt == "dfew"),
                             _label(fields[label_col], classes, path, no, offset), no, frames, tuple(targets)))
    return Annotations(path, fmt, entries, [cols[i] for i in reg])


def _parquet(path: Path, classes: list[str]) -> Annotations:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:120]})") from None
    cols = table.column_names
    data = table.to_pydict()
    rows = [(i + 2, ["" if data[c][i] is None else str(data[c][i]) for c in cols]) for i in range(table.num_rows)]
    return _rows_table(path, cols, rows, classes)


def read_annotations(path: str | Path, classes: list[str]) -> Annotations:
    """Parse an annotation file of any supported format against the label map ``classes``."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "annotation file")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic == b"PAR1" or path.suffix.lower() == ".parquet":
        ann = _parquet(path, classes)
    else:
        lines = _text_lines(path)
        if not lines:
            raise DataError(f"{path}: no annotation lines")
        first = lines[0][1]
        if "," in first:
            reader = list(csv.reader(io.StringIO("\n".join(t for _, t in lines))))
            ann = _rows_table(path, reader[0], [(no, r) for (no, _), r in zip(lines[1:], reader[1:], strict=True)],
                              classes)
        else:
            ann = _spaced(path, lines, classes)
    if not ann.entries:
        raise DataError(f"{path}: a header but no clips")
    return ann


def guess_classes(path: str | Path) -> int | None:
    """The number of classes an annotation's integer labels suggest (max + 1), or None for named labels."""
    try:
        ann = read_annotations(path, [str(i) for i in range(1000)])
    except DataError:
        return None
    return max(ann.labels()) + 1
