"""``fx crop`` as an executor job: each item runs ``workers._work`` (the function the local worker pool runs,
``process.run_one`` with a per-process face backend), which writes the source's clips and manifest part."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceexpr_cli.crop import manifest as mf
from faceexpr_cli.crop.inputs import Item
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.executors import Resources


@dataclass
class CropJob:
    out: str
    opts: CropOptions
    resources: Resources = field(default_factory=lambda: Resources(num_cpus=1, memory_mb=1024))
    ordered: bool = False  # each source has its own part; the manifest is sorted when combined

    def key(self, item: Item) -> str:
        return item.source_id

    def run_item(self, item: Item) -> list[dict]:
        from faceexpr_cli.crop.workers import _work

        return _work(item, self.out, self.opts)

    def failed(self, item: Item, error: str) -> list[dict]:
        return [mf.new_row(item.source, item.source_id, "error", error)]

    def checkpoint_root(self) -> str:
        return self.out


def merge_rows(out: Path, item: Item, rows: list[dict]) -> None:
    """Driver side: the source's part holds its rows (a worker on a shared folder wrote it already; a failed
    shard's rows, or a worker that could not write here, are written now)."""
    if not mf.part_path(out, item.source_id).is_file():
        mf.write_part(out, item.source_id, rows)
