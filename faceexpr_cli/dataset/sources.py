"""Where clip samples come from: WebDataset tar shards, or a plain folder of mp4 files.

Both are listed as "shards" (a tar, or a single mp4 with an optional ``<stem>.json`` beside it) so that the reader
splits and shuffles them the same way. Raw samples are ``(key, mp4 bytes, metadata dict, shard path)``.
Keys come from files (tar member names, a JSON beside an mp4) and consumers turn them into file names (token
caches, feature files), so they are always made safe here (``format.safe_key``: letters, digits, ``_``, ``-``).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faceexpr_cli.dataset import format as fmt
from faceexpr_cli.errors import DataError, MissingFileError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


@dataclass
class RawSample:
    key: str
    video: bytes
    meta: dict
    url: str


def list_shards(source: str | Path | list[str | Path]) -> list[Path]:
    """Tar shards of a dataset folder, explicit tar/mp4 paths, a glob, or every video in a plain folder."""
    if isinstance(source, list | tuple):
        out: list[Path] = []
        for s in source:
            out.extend(list_shards(s))
        return out
    text = str(source)
    if any(ch in text for ch in "*?["):
        parent = Path(text).parent
        matches = sorted(parent.glob(Path(text).name))
        if not matches:
            raise MissingFileError(text, "dataset shards", "the pattern matches no files")
        return matches
    path = Path(source)
    if not path.exists():
        raise MissingFileError(path, "dataset")
    if path.is_file():
        return [path]
    tars = sorted(p for p in path.glob(f"{fmt.SHARD_PREFIX}-*.tar") if fmt.SHARD_RE.match(p.name))
    if not tars:
        tars = sorted(path.glob("*.tar"))
    if tars:
        return tars
    videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    if not videos:
        raise DataError(f"{path}: no clip shards (*.tar) and no video files", "pass a folder made by fx clip or of mp4s")
    return videos


def iter_shard(path: Path) -> Iterator[RawSample]:
    """Samples of one shard in stored order; a video file is a shard of one sample."""
    if path.suffix.lower() != ".tar":
        meta_path = path.with_suffix(".json")
        meta = _json(meta_path.read_bytes(), meta_path) if meta_path.is_file() else {}
        meta["key"] = fmt.safe_key(str(meta.get("key") or path.stem))
        meta.setdefault("source", str(path))
        yield RawSample(meta["key"], path.read_bytes(), meta, str(path))
        return
    try:
        tar = tarfile.open(path, "r")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{path}: not a readable tar shard ({exc})") from exc
    with tar:
        key = None
        parts: dict[str, bytes] = {}
        for member in tar:
            if not member.isfile() or "." not in member.name:
                continue
            base = member.name.rsplit("/", 1)[-1]
            k, ext = base.split(".", 1)
            if k != key:
                if key is not None:
                    sample = _assemble(key, parts, path)
                    if sample is not None:
                        yield sample
                key, parts = k, {}
            handle = tar.extractfile(member)
            parts[ext.lower()] = handle.read() if handle else b""
        if key is not None:
            sample = _assemble(key, parts, path)
            if sample is not None:
                yield sample


def _assemble(key: str, parts: dict[str, bytes], path: Path) -> RawSample | None:
    video = next((parts[e] for e in ("mp4", "m4v", "mov", "mkv", "webm") if e in parts), None)
    if video is None:
        return None
    meta = _json(parts["json"], f"{path}: {key}.json") if "json" in parts else {}
    key = fmt.safe_key(key)
    meta["key"] = key
    return RawSample(key, video, meta, str(path))


def _json(data: bytes, where: object) -> dict:
    try:
        meta = json.loads(data)
    except ValueError as exc:
        raise DataError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{where}: not a JSON object")
    return meta
