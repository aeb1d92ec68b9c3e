"""`fx clip` on an executor: what a worker records, how the driver replays it, and which done keys and video path
each input's task carries (run here on the local executor, with the cutter stubbed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from faceexpr_cli.clip.inputs import ClipInput
from faceexpr_cli.clip.job import ClipJob, ClipTask, RecordingWriter, clip_on, replay
from faceexpr_cli.clip.pipeline import ClipSettings, clip_key
from faceexpr_cli.clip.windows import WindowSpec
from faceexpr_cli.executors import ExecutorSpec, Resources
from faceexpr_cli.media.clipping import ClipCut


class FakeWriter:
    def __init__(self, done_keys=()):
        self.done_keys = set(done_keys)
        self.calls = []

    def add_sample(self, key, mp4, meta, row):
        self.calls.append(("sample", key, mp4, meta, row))

    def add_row(self, row):
        self.calls.append(("row", row))

    def input_done(self, source):
        self.calls.append(("done", source))


def test_recording_writer_records_in_order_and_learns_its_keys():
    given = frozenset({"a-0000"})
    rec = RecordingWriter(given)
    rec.add_row({"status": "dropped"})
    rec.add_sample("a-0001", b"mp4", {"m": 1}, {"r": 1})
    rec.input_done("a.mp4")
    assert rec.ops == [("row", {"status": "dropped"}), ("sample", "a-0001", b"mp4", {"m": 1}, {"r": 1}),
                       ("done", "a.mp4")]
    assert rec.done_keys == {"a-0000", "a-0001"} and given == frozenset({"a-0000"})  # a copy, not the task's


def test_replay_calls_the_writer_with_each_op():
    writer = FakeWriter()
    ops = [("sample", "k", b"x", {"m": 1}, {"r": 1}), ("row", {"status": "failed"}), ("done", "v.mp4")]
    replay(ops, writer)
    assert writer.calls == ops


def test_clip_job_key_resources_and_failure_rows():
    job = ClipJob(ClipSettings(random=1), "/data/out")
    task = ClipTask(ClipInput("dir/v.mp4", Path("dir/v.mp4"), Path("dir/v.vtt")), frozenset())
    assert job.key(task) == hashlib.sha1(b"dir/v.mp4").hexdigest()[:16] and len(job.key(task)) == 16
    assert job.checkpoint_root() == "/data/out" and job.ordered is True
    assert job.resources == Resources(num_cpus=1, memory_mb=2048)  # one input per CPU, 2 GiB
    assert job.failed(task, "worker died") == [("row", {
        "status": "failed", "source": "dir/v.mp4", "error": "worker died", "reason": None,
        "transcript": "dir/v.vtt", "subject": None})]


def test_run_item_records_a_bad_input_as_its_failed_row():
    job = ClipJob(ClipSettings(random=1), "/out")
    ops = job.run_item(ClipTask(ClipInput("v.mp4", None, error="v.mp4: gone"), frozenset()))
    assert ops == [("row", {"status": "failed", "source": "v.mp4", "error": "v.mp4: gone", "reason": None,
                            "transcript": None, "subject": None})]


@pytest.fixture
def stub_cuts(monkeypatch):
    import faceexpr_cli.media.clipping as clipping

    def cut_many(video, spans, cut, **kw):
        for i, (a, b) in enumerate(spans):
            yield ClipCut(i, b"mp4", a, b, a, b, frames=round((b - a) * 25), fps=25.0, width=192, height=96,
                          has_audio=False)

    monkeypatch.setattr(clipping, "cut_many", cut_many)


def test_clip_on_sends_each_input_its_own_done_keys_and_an_absolute_video(monkeypatch, tmp_path):
    import faceexpr_cli.executors as executors

    seen = {}

    def run_items(spec, job, tasks, on_result, *, label):
        seen.update(spec=spec, job=job, tasks=tasks, label=label)
        for t in tasks:
            on_result(t, [("done", t.item.source)])
        return "summary"

    logged = []
    monkeypatch.setattr(executors, "run_items", run_items)
    monkeypatch.setattr(executors, "log_summary", logged.append)
    monkeypatch.chdir(tmp_path)
    a = ClipInput("talks/a.mp4", Path("talks/a.mp4"), Path("talks/a.vtt"))
    b = ClipInput("b.mp4", None, error="gone")
    done = {clip_key("talks/a.mp4", 0), clip_key("talks/a.mp4", 3), clip_key("b.mp4", 1), clip_key("x.mp4", 0)}
    writer = FakeWriter(done)
    spec = ExecutorSpec(name="ray")
    settings = ClipSettings(random=1)
    assert clip_on(spec, [a, b], settings, writer, tmp_path / "out") == "summary"
    assert logged == ["summary"] and seen["label"] == "clipping" and seen["spec"] is spec
    assert seen["job"].root == str((tmp_path / "out").resolve()) and seen["job"].settings is settings
    ta, tb = seen["tasks"]
    assert ta.done_keys == {clip_key("talks/a.mp4", 0), clip_key("talks/a.mp4", 3)}
    assert tb.done_keys == {clip_key("b.mp4", 1)}
    assert ta.item.video == tmp_path / "talks" / "a.mp4" and ta.item.video.is_absolute()
    assert ta.item.source == "talks/a.mp4" and ta.item.transcript == Path("talks/a.vtt")  # as given
    assert tb.item.video is None and tb.item.error == "gone"
    assert a.video == Path("talks/a.mp4")  # the caller's input is left as it was
    assert writer.calls == [("done", "talks/a.mp4"), ("done", "b.mp4")]


def test_clip_on_the_local_executor_writes_what_a_local_run_writes(talk, stub_cuts):
    from faceexpr_cli.clip.inputs import resolve_inputs

    [item] = resolve_inputs([talk.path])
    bad = ClipInput("bad.mp4", None, error="bad.mp4: gone")
    writer = FakeWriter({clip_key(item.source, 0)})
    settings = ClipSettings(random=2, window=WindowSpec(post=0.2))
    clip_on(ExecutorSpec(), [item, bad], settings, writer, Path("out"))
    kinds = [(c[0], c[1] if c[0] != "row" else c[1]["source"]) for c in writer.calls]
    # clip 0 is already in the dataset: only clip 1 is cut, then the input is done; the bad input is its row
    assert kinds == [("sample", clip_key(item.source, 1)), ("done", item.source), ("row", "bad.mp4")]
    assert writer.calls[-1][1]["error"] == "bad.mp4: gone"
