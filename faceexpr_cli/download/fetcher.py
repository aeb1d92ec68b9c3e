"""One item from start to finish: pick its source, try, back off and retry, verify, rename, and report.

This is where the guarantees live, the same for every source: a file gets its final name only after it is
complete and verified; a permanent failure removes the item's ``.part`` (nothing is left behind); a transient
failure keeps it for the next attempt or run; Ctrl-C stops at the next chunk and keeps it too.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any

from faceexpr_cli.console import log
from faceexpr_cli.download import resume
from faceexpr_cli.download.dest import Destination
from faceexpr_cli.download.errors import FetchError, Interrupted, PermanentError, TransientError
from faceexpr_cli.download.items import Item, refused_url
from faceexpr_cli.download.limits import HostLimiter, Meter
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.download.redaction import Scrubber
from faceexpr_cli.download.sources import SOURCES, Fetched, FetchJob, Source, pick_source
from faceexpr_cli.download.verify import check, sha256_file
from faceexpr_cli.errors import DependencyError, FxError
from faceexpr_cli.safety import redact_url


class Fetcher:
    """Shared by the worker threads of one run (sources keep per-thread connections themselves)."""

    def __init__(self, dest: Destination, options: DownloadOptions, meter: Meter | None = None):
        self.dest = dest
        self.options = options
        self.meter = meter or Meter(options.rate_limit)
        self.hosts = HostLimiter(options.per_host)
        self._sources: dict[str, Source] = {}
        SOURCES.names()  # discover the source modules now: Registry discovery is not thread-safe
        self._lock = threading.Lock()

    def source(self, name: str) -> Source:
        with self._lock:
            if name not in self._sources:
                self._sources[name] = SOURCES.get(name)(self.options)
            return self._sources[name]

    def run(self, item: Item) -> dict[str, Any]:
        """Fetch one item; always returns its status record (never raises), its URL secrets blanked."""
        scrub = Scrubber(item.url)
        return scrub.record(self._run(item, scrub))

    def _run(self, item: Item, scrub: Scrubber) -> dict[str, Any]:
        started = time.monotonic()
        record: dict[str, Any] = {"key": item.key, "url": redact_url(item.url), "name": item.name, "attempts": 0,
                                  "transferred": 0, **{k: v for k, v in item.meta.items() if k not in ("key", "url")}}
        if not item.problem and refused_url(item.url):
            item.problem, item.problem_kind = refused_url(item.url), "bad_url"
        if item.problem:
            return self._failed(record, PermanentError(item.problem_kind, item.problem), started)
        try:
            source_name = pick_source(item, self.options.source)
            source = self.source(source_name)
        except Exception as exc:  # an unknown source name in a row is that row's problem
            return self._failed(record, PermanentError("bad_source", getattr(exc, "message", str(exc))), started)
        record["source"] = source_name
        part = self.dest.part(item.name)
        if self.options.force:  # --force fetches anew: nothing left from an earlier run is trusted or resumed
            self.dest.discard(part)
        job = FetchJob(item, part, self.meter, self.options)
        restarted = False
        while True:
            record["attempts"] += 1
            try:
                with self.hosts.hold(item.host, self.meter.stop):
                    got = source.fetch(job)
                record["transferred"] += got.transferred
                self._verify(item, got, record)
                self.meter.check()  # after Ctrl-C nothing more takes a final name; the complete .part stays
                return self._commit(item, got, record, started)
            except Interrupted:
                record.update(status="failed", error_class="interrupted", error="stopped by Ctrl-C; re-run to resume",
                              transient=True, seconds=round(time.monotonic() - started, 3))
                return record
            except FetchError as exc:
                record["http_status"] = exc.http_status or record.get("http_status")
                if exc.kind == "checksum_mismatch" and record.get("resumed_from") and not restarted:
                    # a resumed part may hold bytes of an older copy: one clean try from zero before giving up
                    log.info("%s: checksum mismatch after resume, fetching again from the start", scrub.text(item.key))
                    self.dest.discard(part)
                    restarted = True
                    continue
                wait = self.options.retry.delay(record["attempts"], exc.retry_after) if exc.transient else None
                if wait is None:
                    if not exc.transient:
                        self.dest.discard(part)
                    else:
                        self.dest.discard_if_empty(part)
                    return self._failed(record, exc, started)
                log.debug("%s: %s; retrying in %.2f s", scrub.text(item.key), scrub.text(exc.message), wait)
                try:
                    self.meter.sleep(wait)
                except Interrupted:
                    record.update(status="failed", error_class="interrupted", error="stopped by Ctrl-C",
                                  transient=True, seconds=round(time.monotonic() - started, 3))
                    return record
            except FxError as exc:  # e.g. a missing fsspec driver: its hint says what to install
                self.dest.discard(part)
                kind = "dependency" if isinstance(exc, DependencyError) else type(exc).__name__
                return self._failed(record, FetchError(kind, exc.one_line()), started)
            except Exception as exc:  # a bug or a local problem (disk full): recorded, the run goes on
                if log.isEnabledFor(logging.DEBUG):  # the traceback may quote the URL: scrubbed like the rest
                    log.debug("%s: unexpected %s", scrub.text(item.key), scrub.text(traceback.format_exc()))
                return self._failed(record, TransientError(type(exc).__name__, str(exc)), started)

    def stopped(self, item: Item) -> dict[str, Any]:
        """The record of an item that Ctrl-C cut short before its worker could report (its .part stays)."""
        record = {"key": item.key, "url": redact_url(item.url), "name": item.name, "status": "failed",
                  "error_class": "interrupted", "error": "stopped by Ctrl-C; re-run to resume", "transient": True,
                  "attempts": 1, "transferred": 0}
        return Scrubber(item.url).record(record)

    def _verify(self, item: Item, got: Fetched, record: dict[str, Any]) -> None:
        record["resumed_from"] = got.resumed_from
        main = got.files[0]
        sha = got.sha256
        if sha is None and self.options.wants_hash(item.sha256):
            sha = sha256_file(main).hexdigest()
        got.sha256 = sha
        check(main, sha, want_sha=item.sha256, want_size=item.size)

    def _commit(self, item: Item, got: Fetched, record: dict[str, Any], started: float) -> dict[str, Any]:
        main = got.files[0]
        size = main.stat().st_size
        if got.files == [self.dest.part(item.name)]:
            names = [item.name]
            paths = [self.dest.commit(main, item.name)]
            resume.clear(main)
        else:  # a staging directory: move each finished file out under its own name
            names = [p.name for p in got.files]
            paths = [self.dest.commit(p, p.name) for p in got.files]
            self.dest.discard(self.dest.part(item.name))
        record.update(status="ok", name=names[0], path=paths[0], files=names, bytes=size, sha256=got.sha256,
                      final_url=got.final_url, etag=got.etag, error_class=None, error=None,
                      seconds=round(time.monotonic() - started, 3), **got.extra)
        if got.http_status:
            record["http_status"] = got.http_status
        return record

    def _failed(self, record: dict[str, Any], exc: FetchError, started: float) -> dict[str, Any]:
        # transient: a re-run may succeed (retries ran out, Ctrl-C); permanent ones need the row or the server fixed
        record.update(status="failed", error_class=exc.kind, error=exc.message, transient=exc.transient,
                      seconds=round(time.monotonic() - started, 3))
        return record
