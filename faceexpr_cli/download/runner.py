"""``fx download MANIFEST --out DEST``: read the manifest, skip what is done, fetch the rest on threads.

Data flow: manifest rows -> Items (this shard's) -> skip those whose previous status is ok and whose files are
still at DEST -> a thread pool runs ``Fetcher.run`` per item (per-host limit, shared bandwidth cap) -> each
record goes to the status journal as it finishes -> the Parquet status and a summary at the end. Ctrl-C sets the
stop flag: queued items are dropped, workers end at their next chunk (or are abandoned after a short grace),
keep their ``.part`` files, the status is written, then ``RunInterrupted`` goes on to the CLI (exit 130).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.console import err, log
from faceexpr_cli.download.dest import Destination, is_remote
from faceexpr_cli.download.errors import RunInterrupted
from faceexpr_cli.download.fetcher import Fetcher
from faceexpr_cli.download.items import Item, shard_of
from faceexpr_cli.download.limits import Meter
from faceexpr_cli.download.manifest import YOUTUBE, read_manifest
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.download.status import StatusLog
from faceexpr_cli.download.verify import sha256_file
from faceexpr_cli.executors import ExecutorSpec
from faceexpr_cli.runlock import output_lock
from faceexpr_cli.safety import redact_url


@dataclass
class RunResult:
    dest: str
    records: list[dict[str, Any]]
    seconds: float
    transferred: int
    status_files: list[Path] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.get("status") == status)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") == "failed"]

    def summary(self) -> dict[str, Any]:
        return {"dest": self.dest, "items": len(self.records), "ok": self.count("ok"),
                "skipped": self.count("skipped"), "failed": self.count("failed"),
                "bytes": self.transferred, "seconds": round(self.seconds, 3),
                "mb_per_s": round(self.transferred / 1e6 / self.seconds, 2) if self.seconds > 0 else 0.0,
                "status": [str(p) for p in self.status_files]}


class _Traffic:
    """Bytes and a rate over the last few seconds, for the progress line."""

    def __init__(self, meter: Meter):
        self.meter = meter
        self.samples: deque[tuple[float, int]] = deque(maxlen=20)

    def text(self) -> str:
        now, total = time.monotonic(), self.meter.bytes
        self.samples.append((now, total))
        t0, b0 = self.samples[0]
        rate = (total - b0) / (now - t0) if now > t0 else 0.0
        return f"{_human(total)} {_human(rate)}/s"


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def select(items: list[Item], shard: tuple[int, int] | None) -> list[Item]:
    return items if shard is None else [it for it in items if shard_of(it.key, shard[1]) == shard[0]]


def download_manifest(manifest: str | Path, dest: str | Path, options: DownloadOptions | None = None,
                      id_url: str = YOUTUBE, progress: bool = True, executor: ExecutorSpec | None = None
                      ) -> RunResult:
    """Fetch every item of a manifest (this shard's) into ``dest``; returns every item's status record.
    ``executor`` (``ray``) fetches the items as Ray tasks with the same per-item code."""
    options = options or DownloadOptions()
    spec = (executor or ExecutorSpec()).check()
    started = time.monotonic()
    # one run per destination: the lock is taken before anything (status, .part files) is read or written there
    if is_remote(str(dest)):
        destination = Destination(dest, options)
        lock = output_lock(destination.local, "fx download", flag="--staging")
    else:
        lock = output_lock(Path(str(dest).removeprefix("file://")).expanduser(), "fx download", flag="--out")
    with lock:
        if not is_remote(str(dest)):
            destination = Destination(dest, options)
        return _run(manifest, destination, options, id_url, progress, started, spec)


def _run(manifest: str | Path, destination: Destination, options: DownloadOptions, id_url: str, progress: bool,
         started: float, spec: ExecutorSpec | None = None) -> RunResult:
    items = select(read_manifest(manifest, id_url=id_url), options.shard)
    status = StatusLog(destination, options.shard)
    listing = destination.listing()
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for item in items:
        prev = None if options.force else status.done(item.key, listing) or _present(item, listing, destination)
        if prev is not None:
            records[item.key] = {**prev, **item.meta, "status": "skipped", "attempts": 0, "transferred": 0,
                                 "seconds": 0.0, "error_class": None, "error": None}
            status.records[item.key] = records[item.key]
        else:
            todo.append(item)
    log.info("%d items: %d to fetch, %d already done", len(items), len(todo), len(items) - len(todo))
    meter = Meter(options.rate_limit)
    fetcher = Fetcher(destination, options, meter)
    summary = None
    try:
        if spec is not None and spec.distributed and todo:
            summary = _run_on(spec, destination, options, todo, records, status)
        else:
            run_pool(fetcher, todo, lambda rec: _keep(rec, records, status), meter, progress and bool(todo))
    finally:
        status_files = status.close()
    ordered = [records[it.key] for it in items if it.key in records]
    transferred = meter.bytes if summary is None else sum(int(records[it.key].get("transferred") or 0)
                                                          for it in todo if it.key in records)
    return RunResult(redact_url(str(destination)), ordered, time.monotonic() - started, transferred, status_files)


def _run_on(spec: ExecutorSpec, destination: Destination, options: DownloadOptions, todo: list[Item],
            records: dict[str, dict[str, Any]], status: StatusLog):
    """The items on another executor (Ray); Ctrl-C kills the running transfers (their .part files stay)."""
    from faceexpr_cli.download.job import DownloadJob
    from faceexpr_cli.executors import log_summary, run_items

    here = str(destination.local.resolve())  # workers need no shared working directory
    job = DownloadJob(destination.url if destination.remote else here, options, here)
    once: dict[str, Item] = {}
    for it in todo:  # a row listed twice is fetched once (its first row), in manifest order
        once.setdefault(it.key, it)
    todo = list(once.values())
    try:
        summary = run_items(spec, job, todo, lambda _it, rec: _keep(rec, records, status), label="download")
    except KeyboardInterrupt:
        finished = sum(1 for it in todo if it.key in records)
        raise RunInterrupted(finished, 0, len(todo) - finished) from None
    log_summary(summary)
    return summary


def _keep(record: dict[str, Any], records: dict[str, dict[str, Any]], status: StatusLog) -> None:
    records[record["key"]] = record
    status.add(record)


def _present(item: Item, listing: dict[str, int], dest: Destination) -> dict[str, Any] | None:
    """A file already at its final name but not in the status (e.g. the status files were removed): final names
    only ever hold complete files, so it counts as done if it matches the row's size and (locally) sha256."""
    size = listing.get(item.name)
    if size is None or item.problem or (item.size is not None and size != item.size):
        return None
    digest = None
    if item.sha256 is not None:
        if dest.remote:
            return None  # cannot hash a bucket object cheaply: fetch it again
        digest = sha256_file(dest.local / item.name).hexdigest()
        if digest != item.sha256:
            return None
    return {"key": item.key, "url": item.url, "name": item.name, "path": dest.final(item.name),
            "files": [item.name], "bytes": size, "sha256": digest}


GRACE = 2.0  # seconds that running transfers get after Ctrl-C to reach their next chunk and report


def run_pool(fetcher: Fetcher, todo: list[Item], on_record: Callable[[dict[str, Any]], None], meter: Meter,
             show: bool, label: str = "download", grace: float = GRACE) -> None:
    """Run ``fetcher.run`` over items on threads with a progress bar; ``on_record`` sees each finished record.

    Workers are daemon threads, so a transfer blocked in a read (a server that went silent) cannot hold the
    process after Ctrl-C: queued items are not started, running ones get ``grace`` seconds to stop at their next
    chunk (their ``.part`` and its sidecar stay for resume), any still blocked get an ``interrupted`` record, and
    ``RunInterrupted`` goes up to the CLI (exit 130).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    quiet = not show or log.getEffectiveLevel() > logging.INFO
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[traffic]}"), TextColumn("[red]{task.fields[failed]}"),
                   TimeElapsedColumn(), console=err, disable=quiet)
    traffic = _Traffic(meter)
    work: queue.SimpleQueue[Item] = queue.SimpleQueue()
    for item in todo:
        work.put(item)
    results: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    running: dict[int, Item] = {}
    lock = threading.Lock()

    def worker() -> None:
        while not meter.stop.is_set():
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            with lock:
                running[threading.get_ident()] = item
            try:
                record = fetcher.run(item)
            except BaseException:  # run() returns a record for every failure; this is a last resort
                record = fetcher.stopped(item)
            with lock:  # one step, so the main thread never sees an item both running and finished
                running.pop(threading.get_ident(), None)
                results.put(record)

    threads = [threading.Thread(target=worker, daemon=True, name=f"fx-download-{i}")
               for i in range(min(max(1, fetcher.options.jobs), len(todo)))]
    finished = failed = 0
    try:
        with bar:
            task = bar.add_task(label, total=len(todo), traffic="", failed="")
            for thread in threads:
                thread.start()
            while finished < len(todo):
                try:
                    record = results.get(timeout=0.25)
                except queue.Empty:
                    record = None
                if record is not None:
                    on_record(record)
                    finished += 1
                    failed += record["status"] == "failed"
                bar.update(task, completed=finished, traffic=traffic.text(),
                           failed=f"{failed} failed" if failed else "")
    except KeyboardInterrupt:
        meter.stop.set()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with lock:
                busy = bool(running)
            try:
                on_record(results.get(timeout=0.05))
                finished += 1
            except queue.Empty:
                if not busy:
                    break
        with lock:  # what is still running now is abandoned: recorded as interrupted, its .part kept
            while True:
                try:
                    on_record(results.get_nowait())
                    finished += 1
                except queue.Empty:
                    break
            stuck = list(running.values())
            running.clear()
        for item in stuck:
            on_record(fetcher.stopped(item))
        raise RunInterrupted(finished, len(stuck), len(todo) - finished - len(stuck)) from None
