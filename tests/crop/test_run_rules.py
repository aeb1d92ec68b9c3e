"""crop/run.py, job.py, stop.py and workers.py without decoding a video.

``run_one`` is replaced by a fake that writes the part a real worker would (status chosen per file name), or
the inputs are non-video files, whose ``skipped`` rows the real code writes without a face backend. The face
backend itself is replaced, so nothing loads a model.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from faceexpr_cli.crop import manifest as mf
from faceexpr_cli.crop import run as run_mod
from faceexpr_cli.crop import stop
from faceexpr_cli.crop.inputs import Item
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.crop.process import clip_dir
from faceexpr_cli.errors import BatchFailures, UsageError


# --- run_stats ------------------------------------------------------------------------------------------------------
def _r(source, status, **kw):
    return mf.new_row(source, source[-1], status, **kw)


def test_run_stats_counts_each_source_once_by_its_worst_status():
    items = [Item(f"/{c}") for c in "abcdef"]
    rows = [
        _r("/a", "ok", start_time=1.0, end_time=3.5, seconds=2.0), _r("/a", "dropped", seconds=2.0),
        _r("/b", "ok", start_time=0.0, end_time=1.0004, seconds=1.0), _r("/b", "error", error="e2", seconds=1.0),
        _r("/c", "no_face", seconds=0.25), _r("/d", "skipped"), _r("/e", "no_clip", seconds=0.5),
        _r("/e", "dropped", seconds=0.5), _r("/f", "error", error="e1"), _r("/f", "error", error="e2"),
    ]
    opts = CropOptions(size=64)
    s = run_mod.run_stats(items, rows, opts, 12.34567, skipped=2, workers=3)
    assert s["inputs"] == 6 and s["resumed_skipped"] == 2 and s["workers"] == 3
    # /b has an ok clip and an error: error wins; /e has dropped and no_clip: the first in sorted order
    assert dict(s["videos"]) == {"ok": 1, "error": 2, "no_face": 1, "skipped": 1, "dropped": 1}
    assert s["failed"] == 2 and s["failures"] == ["e1", "e2"]  # sorted, each message once
    assert s["clips"] == 2 and s["clips_dropped"] == 2
    assert s["clip_seconds"] == round(2.5 + 1.0004, 3) == 3.5  # ok rows only, end - start
    assert s["wall_seconds"] == 12.346
    assert s["processing_seconds"] == 2.0 + 1.0 + 0.25 + 0.5  # once per source, rows without seconds left out
    assert s["options"] == opts.to_dict()


def test_run_stats_keep_at_most_50_failure_messages_and_survive_missing_times():
    rows = [_r(f"/s{i:03d}", "error", error=f"e{i:03d}") for i in range(60)]
    rows.append(_r("/ok", "ok"))  # no times: counts as 0 s
    s = run_mod.run_stats([], rows, CropOptions(), 0.0, skipped=0, workers=1)
    assert s["failures"] == [f"e{i:03d}" for i in range(50)] and s["failed"] == 60
    assert s["clip_seconds"] == 0 and s["processing_seconds"] == 0 and s["inputs"] == 0


# --- _run with a fake worker ------------------------------------------------------------------------------------------
def _fake_run_one(calls, interrupt_on=None):
    def run_one(item, out, opts, backend):
        calls.append(Path(item.source).name)
        if Path(item.source).name == interrupt_on:
            (out / clip_dir(item)).mkdir(parents=True, exist_ok=True)  # a clip being written
            (out / clip_dir(item) / "t000_00.mp4").write_bytes(b"half")
            (out / ".stats.json.1.part").write_bytes(b"")
            raise KeyboardInterrupt
        status = "error" if "bad" in item.source else "no_face"
        rows = [mf.new_row(item.source, item.source_id, status, "boom" if status == "error" else None, seconds=0.5)]
        mf.write_part(out, item.source_id, rows)
        return rows

    return run_one


def _items(tmp_path, *names):
    return [Item(str(tmp_path / n)) for n in names]


def test_run_records_every_part_and_raises_for_failures(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(run_mod, "run_one", _fake_run_one(calls))
    out = tmp_path / "out"
    out.mkdir()
    opts = CropOptions(backend="dlib")
    spec = run_mod.ExecutorSpec(workers=1).check()
    mf.write_part(out, "other", [mf.new_row("/elsewhere.mp4", "other", "no_face")])  # another run's source
    items = _items(tmp_path, "a.mp4", "bad.mp4")
    with pytest.raises(BatchFailures) as exc:
        run_mod._run(items, out, opts, None, spec, resume=True, raise_on_failure=True)
    assert (exc.value.failed, exc.value.total) == (1, 2)
    assert exc.value.message == f"1 of 2 items failed, see {out / 'manifest.parquet'}"
    assert calls == ["a.mp4", "bad.mp4"]
    df = mf.read_manifest(out / "manifest.parquet")
    assert sorted(df["source"]) == sorted([items[0].source, items[1].source, "/elsewhere.mp4"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["inputs"] == 2 and stats["failed"] == 1 and stats["failures"] == ["boom"]
    assert "interrupted" not in stats and "executor" not in stats

    # a re-run skips the finished source and retries the failed one; without raising it returns the result
    calls.clear()
    result = run_mod._run(items, out, opts, None, spec, resume=True, raise_on_failure=False)
    assert calls == ["bad.mp4"] and result.failed == 1 and result.stats["resumed_skipped"] == 1
    assert result.manifest == out / "manifest.parquet" and result.out == out
    assert sorted(r["source"] for r in result.rows) == sorted(i.source for i in items)  # this run's inputs only
    calls.clear()
    result = run_mod._run(items, out, opts, None, spec, resume=False, raise_on_failure=False)
    assert calls == ["a.mp4", "bad.mp4"] and result.stats["resumed_skipped"] == 0


def test_ctrl_c_records_the_finished_and_removes_the_unfinished(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(run_mod, "run_one", _fake_run_one(calls, interrupt_on="b.mp4"))
    out = tmp_path / "out"
    out.mkdir()
    items = _items(tmp_path, "a.mp4", "b.mp4", "c.mp4")
    with pytest.raises(run_mod.CropInterrupted) as exc:
        run_mod._run(items, out, CropOptions(backend="dlib"), None, run_mod.ExecutorSpec(workers=1).check(),
                     resume=True, raise_on_failure=True)
    assert calls == ["a.mp4", "b.mp4"] and isinstance(exc.value, KeyboardInterrupt)
    result = exc.value.result
    assert result.stats["interrupted"] is True and result.stats["unfinished"] == 2  # b (in flight) and c
    assert [r["source"] for r in result.rows] == [items[0].source]
    assert not (out / clip_dir(items[1])).exists()  # the half-written clip of b is gone
    assert not list(out.glob(".*.part"))
    assert json.loads((out / "stats.json").read_text())["interrupted"] is True


# --- crop_videos end to end on non-video files ---------------------------------------------------------------------
class _Backend:
    name = "fake"
    embedding_dim = None

    def prepare(self):
        return self


@pytest.fixture
def no_models(monkeypatch):
    import faceexpr_cli.face as face

    built = []

    def get_backend(name="default", **opts):
        built.append((name, opts))
        return _Backend()

    monkeypatch.setattr(face, "get_backend", get_backend)
    return built


def test_workers_below_one_is_refused_before_anything(tmp_path, no_models):
    with pytest.raises(UsageError, match=r"^--workers must be >= 1$"):
        run_mod.crop_videos([tmp_path], tmp_path / "out", CropOptions(backend="dlib"), workers=0)
    assert no_models == [] and not (tmp_path / "out").exists()


def test_no_inputs_is_a_usage_error(tmp_path, no_models):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as exc:
        run_mod.crop_videos([tmp_path / "empty"], tmp_path / "out", CropOptions(backend="dlib"))
    assert exc.value.message == "no inputs to crop"
    assert exc.value.hint == "pass video files, directories or a manifest"
    assert no_models == [("dlib", {})]  # the backend is checked before the folder is read


def test_a_directory_of_non_videos_is_all_skipped_rows(tmp_path, no_models):
    d = tmp_path / "in"
    d.mkdir()
    for n in ("a.txt", "b.md"):
        (d / n).write_text("x")
    out = tmp_path / "out"
    opts = CropOptions(backend="dlib", backend_options={"upsample": 1})
    result = run_mod.crop_videos([d], out, opts)
    assert no_models == [("dlib", {"upsample": 1})]
    assert [r["status"] for r in result.rows] == ["skipped", "skipped"] and result.failed == 0
    assert dict(result.stats["videos"]) == {"skipped": 2} and result.stats["clips"] == 0
    assert json.loads((out / "run.json").read_text())["settings"] == json.loads(json.dumps(opts.settings()))
    # same settings: resumed (a dead run's temporary file is removed); other settings: refused; --overwrite: redone
    (out / "manifest" / "parts" / ".x.parquet.9.part").write_bytes(b"")
    again = run_mod.crop_videos([d], out, CropOptions(backend="dlib", backend_options={"upsample": 1}))
    assert again.stats["resumed_skipped"] == 2 and not (out / "manifest" / "parts" / ".x.parquet.9.part").exists()
    with pytest.raises(UsageError, match="size 256 -> 64"):
        run_mod.crop_videos([d], out, CropOptions(backend="dlib", size=64, backend_options={"upsample": 1}))
    (out / "stray.json").write_text("{}")
    (out / ".manifest.parquet.9.part").write_bytes(b"")
    fresh = run_mod.crop_videos([d], out, CropOptions(backend="dlib", size=64), overwrite=True)
    assert fresh.stats["resumed_skipped"] == 0 and (out / "stray.json").exists()
    assert not (out / ".manifest.parquet.9.part").exists()
    assert json.loads((out / "run.json").read_text())["settings"]["size"] == 64


def _work_or_die(item, out, opts):
    """Module level, so the pool can pickle it: the worker of ``boom.txt`` dies, the others do their work."""
    from faceexpr_cli.crop.process import run_one

    if item.source.endswith("boom.txt"):
        raise RuntimeError("out of memory")
    return run_one(item, Path(out), opts, None)


def test_an_output_folder_inside_the_input_is_not_input(tmp_path, no_models):
    import os

    (tmp_path / "a.txt").write_text("x")
    first = run_mod.crop_videos([tmp_path], tmp_path / "out", CropOptions(backend="dlib"), workers=2)
    again = run_mod.crop_videos([tmp_path], tmp_path / "out", CropOptions(backend="dlib"), workers=2)
    assert first.stats["inputs"] == again.stats["inputs"] == 1  # run.json, parts, stats.json are not videos
    assert [r["worker_pid"] for r in first.rows] == [os.getpid()]  # one video: no worker processes


def test_workers_run_items_in_processes_and_a_dead_worker_fails_only_its_item(tmp_path, no_models, monkeypatch):
    from faceexpr_cli.crop import workers

    monkeypatch.setattr(workers, "_work", _work_or_die)
    d = tmp_path / "in"
    d.mkdir()
    for n in ("a.txt", "boom.txt", "c.txt"):
        (d / n).write_text("x")
    result = run_mod.crop_videos([d], tmp_path / "out", CropOptions(backend="dlib"), workers=2,
                                 raise_on_failure=False)
    status = {Path(r["source"]).name: (r["status"], r["error"]) for r in result.rows}
    assert status == {"a.txt": ("skipped", "not a video file (.txt)"),
                      "boom.txt": ("error", "worker failed: out of memory"),
                      "c.txt": ("skipped", "not a video file (.txt)")}
    assert result.stats["workers"] == 2 and result.failed == 1
    pids = {r["worker_pid"] for r in result.rows if r["status"] == "skipped"}
    import os

    assert None not in pids and os.getpid() not in pids  # made in worker processes


# --- job, stop, workers ---------------------------------------------------------------------------------------------
def test_crop_job_keys_rows_and_merging(tmp_path):
    from faceexpr_cli.crop.job import CropJob, merge_rows

    opts = CropOptions(backend="dlib")
    job = CropJob(str(tmp_path), opts)
    item = Item(str(tmp_path / "x.txt"), "not a video file (.txt)")
    assert job.key(item) == item.source_id and job.checkpoint_root() == str(tmp_path)
    assert (job.resources.num_cpus, job.resources.memory_mb, job.ordered) == (1, 1024, False)
    assert CropJob("o", opts).resources is not CropJob("o", opts).resources
    [row] = job.failed(item, "node lost")
    assert (row["source"], row["source_id"], row["status"], row["error"]) == (item.source, item.source_id,
                                                                              "error", "node lost")
    # the driver writes a part only where the worker could not
    merge_rows(tmp_path, item, [row])
    assert [r["error"] for r in mf.read_parts(tmp_path)] == ["node lost"]
    merge_rows(tmp_path, item, [mf.new_row(item.source, item.source_id, "ok")])
    assert [r["status"] for r in mf.read_parts(tmp_path)] == ["error"]
    [done] = job.run_item(item)  # the worker's own code: a skipped row, written as the part
    assert done["status"] == "skipped" and [r["status"] for r in mf.read_parts(tmp_path)] == ["skipped"]


def test_work_builds_the_backend_once_and_not_for_skipped_items(tmp_path, monkeypatch):
    import faceexpr_cli.face as face
    from faceexpr_cli.crop import process, workers

    built, ran = [], []
    monkeypatch.setattr(workers, "_backend", None)
    monkeypatch.setattr(face, "get_backend", lambda name, **kw: built.append((name, kw)) or _Backend())
    monkeypatch.setattr(process, "run_one", lambda item, out, opts, backend: ran.append((out, backend)) or [])
    opts = CropOptions(backend="dlib", backend_options={"upsample": 2})
    workers._work(Item("/x.txt", "not a video"), str(tmp_path), opts)
    assert built == [] and ran == [(tmp_path, None)]
    workers._work(Item("/a.mp4"), str(tmp_path), opts)
    workers._work(Item("/b.mp4"), str(tmp_path), opts)
    assert built == [("dlib", {"upsample": 2})] and isinstance(ran[1][1], _Backend) and ran[1][1] is ran[2][1]
    assert workers.STOP_WAIT_S == 5.0  # docs/face.md: a worker that does not stop within 5 s is terminated


class _Event:
    def __init__(self, on=False):
        self.on = on

    def is_set(self):
        return self.on


def test_stop_check_and_frames(monkeypatch):
    monkeypatch.setattr(stop, "_event", None)
    stop.check()  # no event: the parent process, where Ctrl-C is a KeyboardInterrupt
    assert list(stop.frames(iter([1, 2, 3]))) == [1, 2, 3]
    event = _Event()
    monkeypatch.setattr(stop, "_event", event)
    stop.check()
    seen = []
    it = stop.frames(iter([1, 2, 3]))
    seen.append(next(it))
    event.on = True
    with pytest.raises(stop.Stopped):
        seen.append(next(it))
    assert seen == [1] and issubclass(stop.Stopped, KeyboardInterrupt)


def test_watch_ignores_sigint_and_keeps_the_event(monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(stop, "_event", None)
    event = _Event(on=True)
    try:
        stop.watch(event)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and stop._event is event
        with pytest.raises(stop.Stopped):
            stop.check()
    finally:
        signal.signal(signal.SIGINT, before)


def test_another_executor_runs_the_same_job_and_its_summary_is_recorded(tmp_path, monkeypatch):
    import faceexpr_cli.executors as executors
    from faceexpr_cli.crop.job import CropJob

    seen = {}

    class _Summary:
        def to_dict(self):
            return {"executor": "fake", "nodes": {}}

    def run_items(spec, job, items, on_result, label="items"):
        seen.update(spec=spec, job=job, label=label, items=[Path(i.source).name for i in items])
        for it in items:  # the first item's worker is lost; the driver records the job's failed rows
            on_result(it, job.failed(it, "worker lost") if it is items[0] else job.run_item(it))
        return _Summary()

    logged = []
    monkeypatch.setattr(executors, "run_items", run_items)
    monkeypatch.setattr(executors, "log_summary", logged.append)

    class _Spec:
        distributed, workers = True, 4

    out = tmp_path / "out"
    out.mkdir()
    items = [Item(str(tmp_path / n), "not a video file (.txt)") for n in ("a.txt", "b.txt")]
    result = run_mod._run(items, out, CropOptions(backend="dlib"), None, _Spec(), resume=True,
                          raise_on_failure=False)
    assert isinstance(seen["job"], CropJob) and seen["job"].out == str(out.resolve()) and seen["label"] == "crop"
    assert seen["items"] == ["a.txt", "b.txt"] and len(logged) == 1
    assert result.stats["executor"] == {"executor": "fake", "nodes": {}} and result.stats["workers"] == 4
    assert sorted((Path(r["source"]).name, r["status"]) for r in result.rows) == [("a.txt", "error"),
                                                                                 ("b.txt", "skipped")]
    assert result.failed == 1
    # everything done: a distributed re-run sends nothing to the executor
    seen.clear()
    run_mod._run(items[1:], out, CropOptions(backend="dlib"), None, _Spec(), resume=True, raise_on_failure=True)
    assert seen == {}


def test_the_pool_hands_out_at_most_one_video_per_worker(tmp_path):
    from concurrent.futures import Future

    from faceexpr_cli.crop import workers

    class _Executor:
        def __init__(self):
            self.submitted = []

        def submit(self, fn, item, out, opts):
            assert fn is workers._work and out == str(tmp_path)
            f = Future()
            f.set_result([Path(item.source).name])
            self.submitted.append(Path(item.source).name)
            return f

    pool = workers.WorkerPool(2, None)
    pool.executor.shutdown()
    pool.executor = fake = _Executor()
    assert pool.workers == 2 and not pool.event.is_set()
    items = [Item(f"/{c}.mp4") for c in "abcde"]
    finished = pool.run(items, tmp_path, CropOptions(backend="dlib"))
    assert fake.submitted == ["a.mp4", "b.mp4"]  # before anything is iterated: one per worker
    got = [(it.source, fut.result()) for it, fut in finished]
    assert sorted(s for s, _ in got) == [i.source for i in items] and fake.submitted == ["a.mp4", "b.mp4",
                                                                                        "c.mp4", "d.mp4", "e.mp4"]
    assert all(res == [s[1:]] for s, res in got)  # each future is paired with its own item


def test_stopping_the_pool_sets_the_event_and_refuses_new_work(tmp_path):
    from faceexpr_cli.crop import workers

    pool = workers.WorkerPool(1, None)
    with pytest.raises(ValueError, match="boom"), pool:
        raise ValueError("boom")  # leaving the block by an error stops the pool
    assert pool.event.is_set()
    with pytest.raises(RuntimeError):
        pool.executor.submit(print, 1)


def _hang(seconds):
    """Module level, so the pool can pickle it: a video that never looks at the stop event."""
    import time

    time.sleep(seconds)
    return []


def test_stopping_terminates_a_worker_that_does_not_stop_by_itself(monkeypatch):
    import os
    import time

    from faceexpr_cli.crop import workers

    monkeypatch.setattr(workers, "STOP_WAIT_S", 0.3)
    pool = workers.WorkerPool(1, None)
    fut = pool.executor.submit(_hang, 60)
    pool.futures[fut] = None
    deadline = time.monotonic() + 10
    while not pool.executor._processes and time.monotonic() < deadline:
        time.sleep(0.01)
    [proc] = list(pool.executor._processes.values())
    time.sleep(0.2)  # the worker has taken the call
    t0 = time.monotonic()
    pool.stop()
    proc.join(10)
    assert proc.exitcode is not None and proc.exitcode < 0  # killed by a signal, not ended by itself
    assert time.monotonic() - t0 < 10 and proc.pid != os.getpid()


def test_the_run_records_its_wall_time(tmp_path, no_models):
    import time

    d = tmp_path / "in"
    d.mkdir()
    (d / "a.txt").write_text("x")
    t0 = time.perf_counter()
    result = run_mod.crop_videos([d], tmp_path / "out", CropOptions(backend="dlib"))
    took = time.perf_counter() - t0
    assert 0 <= result.stats["wall_seconds"] <= took + 0.001
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["wall_seconds"] == result.stats["wall_seconds"]
