"""Inputs of `fx extract-feats`: videos, folders, and manifests (the seed's CSV ``video_path,label``).

Nothing new is parsed here: folders, single files and plain path lists go through ``crop.inputs.expand_inputs``
(non-video files in a folder become ``skipped`` rows), tabular manifests (CSV, TSV, Parquet, JSONL) through
``clip.inputs.resolve_inputs``, which keeps every other column (``label`` among them) and turns a row naming a
missing video into that row's error instead of stopping the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.crop.inputs import Item, expand_inputs
from faceexpr_cli.errors import MissingFileError, UsageError
from faceexpr_cli.inputs import unique_by_source

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl")

# The seed's common label set (seed 002); datasets spell the names in several ways.
LABELS = {"angry": 0, "disgust": 1, "fear": 2, "happy": 3, "neutral": 4, "sad": 5, "surprise": 6, "ambiguous": 7,
          "contempt": 8}
_ALIASES = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "happiness": "happy", "sadness": "sad",
            "surprised": "surprise", "calm": "neutral"}


@dataclass
class VideoItem:
    source: str  # absolute path; the key of resume and of the index
    label: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # other manifest columns
    skip: str | None = None  # not a video file (inside a folder)
    error: str | None = None  # the manifest names a video that is not there

    @property
    def source_id(self) -> str:
        return Item(self.source).source_id

    @property
    def label_id(self) -> int | None:
        return label_id(self.label)


def label_id(label: Any) -> int | None:
    """The seed's class index: an integer label as it is, a known emotion name mapped, anything else None."""
    if label is None:
        return None
    text = str(label).strip().lower()
    if text.lstrip("-").isdigit():
        return int(text)
    return LABELS.get(_ALIASES.get(text, text))


def _from_table(path: Path) -> list[VideoItem]:
    from faceexpr_cli.clip.inputs import resolve_inputs

    items = []
    for ci in resolve_inputs([path]):
        fields = dict(ci.fields)
        label = fields.pop("label", None)
        video = Path(ci.video).expanduser() if ci.video is not None else Path(ci.source)
        source = str(video.resolve()) if video.exists() else str(video.absolute())
        items.append(VideoItem(source, None if label is None else str(label), fields, error=ci.error))
    return items


def expand(inputs: list[str | Path], exclude: str | Path | None = None) -> list[VideoItem]:
    """Work items in a stable order, each video once (the first manifest row naming it wins)."""
    if not inputs:
        raise UsageError("no inputs", "pass videos, folders of videos or a video_path,label CSV")
    items: list[VideoItem] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if not path.exists():
            raise MissingFileError(path, "input")
        if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
            items.extend(_from_table(path))
        else:
            items.extend(VideoItem(it.source, skip=it.skip) for it in expand_inputs([path], exclude=exclude))
    return unique_by_source(items)
