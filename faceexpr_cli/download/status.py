"""The per-item status manifest: a JSON Lines journal written as items finish, and a Parquet table at the end.

The journal is appended and flushed one line per item, so a run that is killed still leaves a true record of
what finished; the Parquet copy (latest row per item, written to a temporary name and renamed) is for analysis.
A re-run reads the previous status to skip what is done. With ``--shard i/N`` each shard keeps its own pair of
files, so machines sharing one destination never write the same file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from faceexpr_cli.download.dest import Destination

STEM = "fx-download"
COLUMNS = ["key", "url", "source", "status", "name", "path", "files", "bytes", "transferred", "resumed_from",
           "sha256", "seconds", "attempts", "error_class", "error", "transient", "http_status", "final_url", "etag", "finished_at"]


def status_stem(shard: tuple[int, int] | None) -> str:
    return f"{STEM}.shard-{shard[0]:05d}-of-{shard[1]:05d}" if shard else STEM


class StatusLog:
    def __init__(self, dest: Destination, shard: tuple[int, int] | None = None):
        self.dest = dest
        self.stem = status_stem(shard)
        self.jsonl = dest.local / f"{self.stem}.jsonl"
        self.parquet = dest.local / f"{self.stem}.parquet"
        self.previous = self._load_previous()
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._fh = None
        # pyarrow takes a few tenths of a second to import: do it while the downloads run, not after them
        threading.Thread(target=_import_arrow, daemon=True, name="fx-arrow-import").start()

    def _load_previous(self) -> dict[str, dict[str, Any]]:
        """The latest record per key from the last run's journal (local copy first, then the destination's)."""
        data = self.jsonl.read_bytes() if self.jsonl.exists() else self.dest.read_bytes(self.jsonl.name)
        if data and self.dest.remote and not self.jsonl.exists():
            self.jsonl.write_bytes(data)  # keep appending to the same journal
        latest: dict[str, dict[str, Any]] = {}
        for line in (data or b"").decode("utf-8", "replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if isinstance(rec, dict) and "key" in rec:
                latest[str(rec["key"])] = rec
        return latest

    def done(self, key: str, listing: dict[str, int]) -> dict[str, Any] | None:
        """The previous ok record of an item whose files are all still at the destination, else None."""
        rec = self.previous.get(key)
        if not rec or rec.get("status") not in ("ok", "skipped"):
            return None
        files = rec.get("files") or [rec.get("name")]
        if not all(f in listing for f in files if f):
            return None
        if rec.get("bytes") is not None and rec.get("name") and listing.get(rec["name"]) != rec["bytes"]:
            return None
        return rec

    def add(self, record: dict[str, Any]) -> None:
        record.setdefault("finished_at", time.strftime("%Y-%m-%dT%H:%M:%S"))
        line = json.dumps(record, default=str, ensure_ascii=False)
        with self._lock:
            self.records[str(record["key"])] = record
            if self._fh is None:
                self._fh = open(self.jsonl, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> list[Path]:
        """Write the Parquet table (previous records updated by this run's) and publish both files."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
        merged = {**self.previous, **self.records}
        write_parquet(list(merged.values()), self.parquet)
        for path in (self.jsonl, self.parquet):
            self.dest.publish(path)
        return [self.jsonl, self.parquet]


def _import_arrow() -> None:
    import pyarrow.json  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value  # NaN is not JSON


def write_parquet(records: list[dict[str, Any]], path: Path) -> None:
    """All records as one Parquet table, typed per column; a column whose values mix types is stored as text.

    Built through Arrow's JSON reader with an explicit schema: building it from Python lists would import
    pandas (pyarrow probes for it), a second of start-up that a one-file download should not pay.
    """
    import io

    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    names = [c for c in COLUMNS if any(c in r for r in records)]
    names += sorted({k for r in records for k in r} - set(names))
    fields, convert = [], {}
    for name in names:
        kinds = {type(r[name]) for r in records if r.get(name) is not None}
        if name == "files":
            fields.append(pa.field(name, pa.list_(pa.string())))
        elif kinds and kinds <= {bool}:
            fields.append(pa.field(name, pa.bool_()))
        elif kinds and kinds <= {int}:
            fields.append(pa.field(name, pa.int64()))
        elif kinds and kinds <= {int, float}:
            fields.append(pa.field(name, pa.float64()))
            convert[name] = float
        else:
            fields.append(pa.field(name, pa.string()))
            if kinds - {str}:
                convert[name] = lambda v: v if isinstance(v, str) else json.dumps(v, default=str)
    schema = pa.schema(fields)
    lines = []
    for rec in records:
        row = {n: _clean(convert[n](rec[n]) if n in convert and rec.get(n) is not None else rec.get(n))
               for n in names}
        lines.append(json.dumps(row, default=str, ensure_ascii=False))
    if lines:
        data = io.BytesIO("\n".join(lines).encode())
        table = pj.read_json(data, parse_options=pj.ParseOptions(explicit_schema=schema),
                             read_options=pj.ReadOptions(block_size=max(1 << 20, len(data.getvalue()) + 1)))
    else:
        table = schema.empty_table()
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")  # unique per process
    pq.write_table(table, tmp)
    os.replace(tmp, path)
