"""``fx clip`` on another executor (Ray): workers run ``pipeline.process_input`` into a recorder; the driver
replays each input's recorded clips and rows into the one ``DatasetWriter`` in input order, so the tar shards,
their parts and the index are the ones a local run writes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from faceexpr_cli.clip.inputs import ClipInput
from faceexpr_cli.executors import Resources


class RecordingWriter:
    """What ``process_input`` needs of a dataset writer, recorded as operations for the driver to replay."""

    def __init__(self, done_keys: frozenset[str]):
        self.done_keys = set(done_keys)
        self.ops: list[tuple] = []

    def add_sample(self, key: str, mp4: bytes, meta: dict[str, Any], row: dict[str, Any]) -> None:
        self.ops.append(("sample", key, mp4, meta, row))
        self.done_keys.add(key)

    def add_row(self, row: dict[str, Any]) -> None:
        self.ops.append(("row", row))

    def input_done(self, source: str) -> None:
        self.ops.append(("done", source))


def replay(ops: list[tuple], writer) -> None:
    for op, *args in ops:
        if op == "sample":
            writer.add_sample(*args)
        elif op == "row":
            writer.add_row(*args)
        else:
            writer.input_done(*args)


@dataclass(frozen=True)
class ClipTask:
    item: ClipInput
    done_keys: frozenset[str]  # this input's clips already in the dataset (an earlier, interrupted run)


@dataclass
class ClipJob:
    settings: Any  # ClipSettings
    root: str
    resources: Resources = field(default_factory=lambda: Resources(num_cpus=1, memory_mb=2048))
    ordered: bool = True  # replayed in input order: the same shards as a local run

    def key(self, task: ClipTask) -> str:
        return hashlib.sha1(task.item.source.encode("utf-8")).hexdigest()[:16]

    def run_item(self, task: ClipTask) -> list[tuple]:
        from faceexpr_cli.clip.pipeline import process_input

        rec = RecordingWriter(task.done_keys)
        process_input(task.item, self.settings, rec)
        return rec.ops

    def failed(self, task: ClipTask, error: str) -> list[tuple]:
        from faceexpr_cli.clip.pipeline import failed_row

        return [("row", failed_row(task.item, error))]

    def checkpoint_root(self) -> str:
        return self.root


def clip_on(spec, todo: list[ClipInput], settings, writer, out: Path):
    from faceexpr_cli.clip.pipeline import clip_key
    from faceexpr_cli.executors import log_summary, run_items

    def task(item: ClipInput) -> ClipTask:
        prefix = clip_key(item.source, 0)[:-4]
        # the video by absolute path (a worker need not share this working directory); ``source`` and the
        # transcript stay as given, since rows record them
        sent = replace(item, video=item.video and item.video.absolute())
        return ClipTask(sent, frozenset(k for k in writer.done_keys if k.startswith(prefix)))

    summary = run_items(spec, ClipJob(settings, str(out.resolve())), [task(it) for it in todo],
                        lambda _task, ops: replay(ops, writer), label="clipping")
    log_summary(summary)
    return summary
