"""``fx download`` on another executor (Ray): each item runs ``Fetcher.run`` (what the local thread pool runs)
in a Ray worker, which builds its destination and fetcher once; the driver keeps every record in the status
journal as it arrives. Per-host limits and ``--limit-rate`` hold per worker process there, not for the cluster."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from faceexpr_cli.download.items import Item
from faceexpr_cli.download.options import DownloadOptions
from faceexpr_cli.executors import Resources

_fetchers: dict[str, Any] = {}  # per worker process: the fetcher of a destination


@dataclass
class DownloadJob:
    dest: str
    options: DownloadOptions
    checkpoints: str  # a local folder: the destination, or the staging folder of a bucket
    # transfers wait on the network: four per CPU
    resources: Resources = field(default_factory=lambda: Resources(num_cpus=0.25, memory_mb=512))
    ordered: bool = False  # the status is written in the manifest's order at the end

    def key(self, item: Item) -> str:
        return hashlib.sha1(item.key.encode("utf-8")).hexdigest()[:16]

    def _fetcher(self):
        if self.dest not in _fetchers:
            from faceexpr_cli.download.dest import Destination
            from faceexpr_cli.download.fetcher import Fetcher

            _fetchers[self.dest] = Fetcher(Destination(self.dest, self.options), self.options)
        return _fetchers[self.dest]

    def run_item(self, item: Item) -> dict[str, Any]:
        return self._fetcher().run(item)

    def failed(self, item: Item, error: str) -> dict[str, Any]:
        from faceexpr_cli.download.redaction import Scrubber
        from faceexpr_cli.safety import redact_url

        record = {"key": item.key, "url": redact_url(item.url), "name": item.name, "status": "failed",
                  "error_class": "worker_lost", "error": error, "transient": True, "attempts": 1, "transferred": 0}
        return Scrubber(item.url).record(record)

    def checkpoint_root(self) -> str:
        return self.checkpoints
