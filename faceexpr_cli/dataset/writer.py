"""Writing clip datasets: WebDataset tar shards closed by size or count, Parquet index parts, resume.

Each shard is written under a temporary name unique to the process and renamed when closed; its Parquet part
is written after it, so a part on disk means "this shard and the rows it lists are final". Resuming reads the parts back: finished
inputs are skipped, keys already written are skipped (an input cut half-way writes only its missing clips),
and numbering continues after the last finished shard. Leftover temporary files are removed: the caller holds
the folder's run lock (``runlock.output_lock``), so they belong to a run that died.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from faceexpr_cli.dataset import format as fmt
from faceexpr_cli.errors import UsageError


class DatasetWriter:
    """``with DatasetWriter(out, settings=...) as w: w.add_sample(key, mp4, meta, row)``.

    ``settings`` (any JSON-able dict) is stored in ``run.json``; resuming into a folder made with other
    settings is refused, because the finished inputs would not match what the new run asks for.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        max_count: int = 1000,
        max_bytes: int = 512 * 1024 * 1024,
        settings: dict[str, Any] | None = None,
        overwrite: bool = False,
    ):
        self.root = Path(root)
        self.max_count = max(1, max_count)
        self.max_bytes = max(1, max_bytes)
        self.settings = settings or {}
        self.root.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self._clear()
        self._check_settings()
        for tmp in self.root.glob(".*.part"):
            tmp.unlink()
        parts = fmt.finished_parts(self.root)
        for stray in self.root.glob(f"{fmt.SHARD_PREFIX}-*.tar"):  # a tar without its part never finished
            m = fmt.SHARD_RE.match(stray.name)
            if m and int(m.group(1)) not in parts:
                stray.unlink()
        self.done_keys: set[str] = set()
        self.done_inputs: set[str] = set()
        self.previous_rows: list[dict] = []
        for part in parts.values():
            for row in pq.read_table(part).to_pylist():
                self.previous_rows.append(row)
                if row["status"] == fmt.OK:
                    self.done_keys.add(row["key"])
                elif row["status"] == fmt.INPUT_DONE:
                    self.done_inputs.add(row["source"])
        self.resumed = bool(parts)
        self._number = (max(parts) + 1) if parts else 0
        self._rows: list[dict] = []
        self._tar: tarfile.TarFile | None = None
        self._tar_tmp: Path | None = None
        self._count = 0
        self._bytes = 0
        self.shards_written: list[Path] = []

    # --- settings / resume -------------------------------------------------------------------------------
    def _clear(self) -> None:
        for pattern in (f"{fmt.SHARD_PREFIX}-*.tar", f"{fmt.SHARD_PREFIX}-*.parquet", fmt.INDEX_NAME,
                        fmt.STATS_NAME, fmt.RUN_NAME, ".*.part"):
            for p in self.root.glob(pattern):
                p.unlink()

    def _check_settings(self) -> None:
        run = self.root / fmt.RUN_NAME
        wanted = json.loads(json.dumps(self.settings, default=str, sort_keys=True))
        if run.exists() and fmt.finished_parts(self.root):
            before = json.loads(run.read_text()).get("settings", {})
            if before != wanted:
                changed = sorted(k for k in set(before) | set(wanted) if before.get(k) != wanted.get(k))
                raise UsageError(
                    f"{self.root} holds a clip run made with other settings ({', '.join(changed)})",
                    "use a new --out, or --overwrite to start again",
                )
        _write_json(run, {"settings": wanted, "format": "fx-clips/1"})

    # --- writing -------------------------------------------------------------------------------------------
    def add_sample(self, key: str, mp4: bytes, meta: dict[str, Any], row: dict[str, Any]) -> None:
        """One clip: ``key.mp4`` and ``key.json`` in the open shard, and an ``ok`` index row."""
        if fmt.safe_key(key) != key:  # keys become tar member names, and file names for readers
            raise ValueError(f"dataset keys may hold only letters, digits, '_' and '-': {key!r}")
        if self._tar is None:
            self._open_shard()
        assert self._tar is not None
        meta_bytes = json.dumps({**meta, "key": key}, sort_keys=True, default=str).encode()
        mark = (self._tar.offset, len(self._tar.members))
        try:
            for name, data in ((f"{key}.mp4", mp4), (f"{key}.json", meta_bytes)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0
                info.mode = 0o644
                self._tar.addfile(info, io.BytesIO(data))
        except BaseException:  # Ctrl-C half-way through a member: the shard keeps only whole samples
            self._rewind(*mark)
            raise
        self._rows.append(fmt.normalise_row({**row, "key": key, "status": fmt.OK,
                                             "shard": fmt.shard_name(self._number), "bytes": len(mp4)}))
        self.done_keys.add(key)
        self._count += 1
        self._bytes += len(mp4) + len(meta_bytes)
        if self._count >= self.max_count or self._bytes >= self.max_bytes:
            self.close_shard()

    def add_row(self, row: dict[str, Any]) -> None:
        """A failure or a dropped hit (``status`` failed / dropped), kept with the open part."""
        self._rows.append(fmt.normalise_row(row))

    def input_done(self, source: str) -> None:
        self._rows.append(fmt.normalise_row({"status": fmt.INPUT_DONE, "source": source}))
        self.done_inputs.add(source)

    def _rewind(self, offset: int, members: int) -> None:
        tar = self._tar
        assert tar is not None and tar.fileobj is not None
        tar.fileobj.seek(offset)
        tar.fileobj.truncate()
        tar.offset = offset
        del tar.members[members:]

    def _open_shard(self) -> None:
        self._tar_tmp = _temp(self.root / fmt.shard_name(self._number))
        self._tar = tarfile.open(self._tar_tmp, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 - closed in close_shard

    def close_shard(self) -> None:
        """Finish the open shard (if any) and write its part, also when it holds only failure rows."""
        if self._tar is None and not self._rows:
            return
        number = self._number
        if self._tar is not None:
            self._tar.close()
            assert self._tar_tmp is not None
            final = self.root / fmt.shard_name(number)
            if self._tar_tmp.exists():  # not yet renamed by a close that Ctrl-C cut short
                self._tar_tmp.replace(final)
                self.shards_written.append(final)
        table = pa.Table.from_pylist(self._rows, schema=fmt.INDEX_SCHEMA)
        part = self.root / fmt.part_name(number)
        tmp = _temp(part)
        pq.write_table(table, tmp)
        tmp.replace(part)
        self.previous_rows.extend(self._rows)
        self._rows, self._tar, self._tar_tmp = [], None, None
        self._count = self._bytes = 0
        self._number += 1

    def close(self) -> list[dict]:
        """Close the last shard and write ``index.parquet``; returns every row (finished-input markers too)."""
        self.close_shard()
        rows = [r for r in final_rows(self.previous_rows) if r["status"] != fmt.INPUT_DONE]
        table = pa.Table.from_pylist(rows, schema=fmt.INDEX_SCHEMA)
        tmp = _temp(self.root / fmt.INDEX_NAME)
        pq.write_table(table, tmp)
        tmp.replace(self.root / fmt.INDEX_NAME)
        return final_rows(self.previous_rows)

    def abort(self) -> None:
        """Drop the open shard (its samples will be redone on resume)."""
        if self._tar is not None:
            self._tar.close()
            if self._tar_tmp is not None:
                self._tar_tmp.unlink(missing_ok=True)
        self._rows, self._tar, self._tar_tmp = [], None, None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close_shard()  # keep the finished work; the run can be resumed
        else:
            self.abort()


def final_rows(rows: list[dict]) -> list[dict]:
    """The rows as of the last attempt at each input: parts keep the history of resumed runs, the index does not.

    A failure of an input that later finished is gone; an input that failed on every attempt keeps its last
    failure; dropped hits recorded by several attempts (same source and key) are kept once.
    """
    done = {r["source"] for r in rows if r["status"] == fmt.INPUT_DONE}
    last_failure: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r["status"] == fmt.FAILED:
            last_failure[r["source"]] = i
    seen: set[tuple] = set()
    out = []
    for i, r in enumerate(rows):
        if r["status"] == fmt.FAILED and (r["source"] in done or last_failure.get(r["source"]) != i):
            continue
        if r["status"] in (fmt.DROPPED, fmt.INPUT_DONE):
            ident = (r["status"], r["source"], r.get("key"))
            if ident in seen:
                continue
            seen.add(ident)
        out.append(r)
    return out


def write_stats(root: str | Path, stats: dict[str, Any]) -> Path:
    path = Path(root) / fmt.STATS_NAME
    _write_json(path, stats)
    return path


def _temp(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process; ``.*.part`` is what a resume cleans up."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def _write_json(path: Path, data: Any) -> None:
    tmp = _temp(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
