"""What ``fx clip`` was given, resolved into (video, transcript, subject fields) inputs.

Accepted: video files, folders of videos, manifests (CSV/TSV/Parquet/JSONL with a video column, optional
transcript column, every other column kept as subject fields), the seed's transcript list (each entry names its
video), and transcript files alone (paired with the video of the same stem). Problems that concern one input (a
transcript whose video does not exist) become that input's ``error`` so the run records it and goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.errors import DataError, MissingFileError, UsageError
from faceexpr_cli.inputs import unique_by_source
from faceexpr_cli.transcripts import Timeline, find_transcript, load_transcript
from faceexpr_cli.transcripts.readers.table import _sniff as is_word_table

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
TRANSCRIPT_SUFFIXES = (".vtt", ".srt", ".json", ".tsv", ".csv")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl")
VIDEO_COLUMNS = ("video", "video_path", "path", "file", "filename")
TRANSCRIPT_COLUMNS = ("transcript", "transcript_path", "captions", "subtitles")


@dataclass
class ClipInput:
    source: str  # the video as the run records it (index rows, resume)
    video: Path | None
    transcript: Path | None = None
    timeline: Timeline | None = None  # already read (entries of a seed list)
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _resolve(path: str, base: Path) -> Path:
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return base / p if (base / p).exists() else p


def resolve_inputs(paths: list[str | Path], *, transcript: str | Path | None = None,
                   transcript_format: str | None = None) -> list[ClipInput]:
    if not paths:
        raise UsageError("no inputs", "pass videos, folders, a manifest or a transcript list")
    found: list[ClipInput] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise MissingFileError(p, "input")
        if p.is_dir():
            videos = sorted(v for v in p.rglob("*") if v.suffix.lower() in VIDEO_SUFFIXES
                            and not any(part.startswith(".") for part in v.relative_to(p).parts))
            if not videos:
                raise DataError(f"{p}: no videos in this folder", f"videos end in {', '.join(VIDEO_SUFFIXES)}")
            found += [ClipInput(str(v), v, find_transcript(v)) for v in videos]
        elif p.suffix.lower() in VIDEO_SUFFIXES:
            found.append(ClipInput(str(p), p, find_transcript(p)))
        elif p.suffix.lower() in MANIFEST_SUFFIXES and not _is_transcript(p):
            found += _manifest(p)
        elif p.suffix.lower() in TRANSCRIPT_SUFFIXES or p.suffix.lower() == ".json":
            found += _from_transcript(p, transcript_format)
        else:
            raise UsageError(f"{p}: not a video, folder, manifest or transcript",
                             f"videos: {', '.join(VIDEO_SUFFIXES)}; manifests: {', '.join(MANIFEST_SUFFIXES)}")
    if transcript is not None:
        if len(found) != 1 or found[0].video is None:
            raise UsageError("--transcript goes with exactly one video", "put transcripts next to videos instead")
        found[0].transcript, found[0].timeline = Path(transcript), None
    return unique_by_source(found)


def _is_transcript(p: Path) -> bool:
    if p.suffix.lower() not in (".csv", ".tsv"):
        return False
    with p.open(encoding="utf-8", errors="replace") as fh:
        return is_word_table(fh.readline())


def _read_rows(p: Path) -> list[dict[str, Any]]:
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    if suffix == ".jsonl":
        rows = []
        for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}:{no}: not valid JSON ({exc.msg})") from exc
        return rows
    import csv

    with p.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))


def _manifest(p: Path) -> list[ClipInput]:
    rows = _read_rows(p)
    if not rows:
        raise DataError(f"{p}: the manifest has no rows")
    cols = list(rows[0])
    vcol = next((c for c in VIDEO_COLUMNS if c in cols), None)
    if vcol is None:
        raise DataError(f"{p}: no video column (one of {', '.join(VIDEO_COLUMNS)})", f"columns: {', '.join(cols)}")
    tcol = next((c for c in TRANSCRIPT_COLUMNS if c in cols), None)
    out = []
    for row in rows:
        video = _resolve(str(row[vcol]), p.parent)
        fields = {k: v for k, v in row.items() if k not in (vcol, tcol) and v not in (None, "")}
        tr = _resolve(str(row[tcol]), p.parent) if tcol and row.get(tcol) else None
        item = ClipInput(str(video), video, tr or (find_transcript(video) if video.exists() else None), fields=fields)
        if not video.exists():
            item.error = f"{p}: the manifest names {row[vcol]}, which does not exist"
        out.append(item)
    return out


def _from_transcript(p: Path, fmt: str | None) -> list[ClipInput]:
    timelines = load_transcript(p, fmt)
    out = []
    for i, tl in enumerate(timelines):
        if tl.video:
            video = _resolve(tl.video, p.parent)
            item = ClipInput(str(video), video, p, tl, dict(tl.fields))
            if not video.exists():
                item.error = f"{p}: entry [{i}] names {tl.video}, which does not exist (a transcript with no video)"
            out.append(item)
            continue
        video = _video_for(p)
        if video is None:
            out.append(ClipInput(str(p), None, p, tl, error=f"{p}: no video found for this transcript "
                                 f"(looked for {p.name.split('.')[0]}.mp4 and other video suffixes beside it)"))
        else:
            out.append(ClipInput(str(video), video, p, tl, dict(tl.fields)))
    return out


def _video_for(transcript: Path) -> Path | None:
    """``talk.en.vtt`` -> ``talk.en.mp4`` or ``talk.mp4`` (any video suffix) beside it."""
    name = transcript.name
    stems = []
    while "." in name:
        name = name.rsplit(".", 1)[0]
        stems.append(name)
    for stem in stems:
        for suffix in VIDEO_SUFFIXES:
            v = transcript.with_name(stem + suffix)
            if v.is_file():
                return v
    return None
