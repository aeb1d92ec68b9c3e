"""`extract_features` end to end with a detector and a model written here: the run's rows, parts, index and
stats.json derived by hand, resume (files present, same settings, unreadable parts redone), and the path through
another executor (ExtractJob) with an in-process executor registered for the test (found by mutation testing)."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from faceexpr_cli.errors import BatchFailures, UsageError
from faceexpr_cli.executors import EXECUTORS, ExecutorSpec, RunSummary
from faceexpr_cli.extract import ExtractOptions, extract_features, records
from faceexpr_cli.extract import run as R
from faceexpr_cli.extract.inputs import VideoItem
from faceexpr_cli.extract.model import ExpressionModel
from faceexpr_cli.face import BACKENDS, Face, FaceBackend
from tests.extract.conftest import bright_face_frames

FPS, N = 25, 24
FACE_FRAMES = [*range(0, 10), *range(14, 24)]
BACKEND = "fx-test-bright-run"
EXECUTOR = "fx-test-inline"


class Bright(FaceBackend):
    """The "face" is the box of the pixels whose red channel is above 200."""

    name = BACKEND

    def _detect(self, image, *, keypoints):
        ys, xs = np.nonzero(image[..., 0] > 200)
        return [Face([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], 0.875)] if len(xs) else []

    def _landmarks(self, image, faces):
        for f in faces:
            f.landmarks68 = np.tile(f.bbox[:2], (68, 1))
        return faces


class FakeModel(ExpressionModel):
    """Tokens = the crop's mean R, G, B over 255 and a constant 2; each call costs a quarter of a second."""

    size = 16

    def __init__(self, device: str = "cpu"):
        self.backend, self.output, self.identity, self.device = "fake", "expression", "fake:1", device
        self.path, self.seconds, self.frames, self.subject_row = Path("/no/such/fake"), 0.0, 0, None
        self.calls: list[int] = []

    def tokens(self, crops):
        self.calls.append(len(crops))
        self.frames += len(crops)
        self.seconds += 0.25
        c = crops.astype(np.float32) / 255
        return np.stack([c[..., 0].mean((1, 2)), c[..., 1].mean((1, 2)), c[..., 2].mean((1, 2)),
                         np.full(len(c), 2.0, np.float32)], 1)

    def describe(self):
        return {"model": "fake"}


class Inline:
    """An executor that is not ``local`` (so the run takes its distributed path) and runs the job right here."""

    seen: list = []

    def __init__(self, spec):
        self.spec = spec

    def run(self, job, items, on_result, *, label="items"):
        Inline.seen.append((job, label, len(items)))
        summary = RunSummary(EXECUTOR, wall_seconds=1.5, shards=1)
        for item in items:
            on_result(item, job.run_item(item))
            summary.add("node-a", 0.5)
        return summary


@pytest.fixture(scope="module", autouse=True)
def _registered():
    """The test backend and executor exist only while this file's tests run (other tests list the
    registries' names)."""
    BACKENDS.add(BACKEND, Bright)
    EXECUTORS.add(EXECUTOR, Inline)
    yield
    BACKENDS._items.pop(BACKEND, None)
    EXECUTORS._items.pop(EXECUTOR, None)


def _frames(face_frames, n=N):
    return bright_face_frames(face_frames, n)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """two.mp4 (a face on 20 of 24 frames, in two stretches), grey.mp4 (none), corrupt.mp4, notes.txt."""
    from faceexpr_cli.media import write_video

    d = tmp_path_factory.mktemp("run_rules_in")
    write_video(d / "two.mp4", _frames(FACE_FRAMES), fps=FPS)
    write_video(d / "grey.mp4", _frames(()), fps=FPS)
    (d / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (d / "notes.txt").write_text("not a video\n")
    return d


def _opts(**kw) -> ExtractOptions:
    return ExtractOptions(**{"stride": 2, "detect_every": 1, "batch_size": 4, "face_backend": BACKEND, **kw})


@pytest.fixture(autouse=True)
def _fresh_worker_cache(monkeypatch):
    monkeypatch.setattr(R, "_loaded", {})


@pytest.fixture(scope="module")
def first(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_rules_out") / "OUT"
    model = FakeModel()
    res = extract_features([folder], model, out, _opts(), raise_on_failure=False)
    return out, res, model


def _names(rows) -> list[tuple[str, str]]:
    return [(Path(r["source"]).name, r["status"]) for r in rows]


def test_rows_parts_and_index(first, folder):
    out, res, _ = first
    assert res.out == out and res.index == out / "features.parquet" and res.failed == 1
    # the folder's files in name order, each with its status
    assert _names(res.rows) == [("corrupt.mp4", "error"), ("grey.mp4", "no_face"), ("notes.txt", "skipped"),
                                ("two.mp4", "ok")]
    settings = _opts().validate().resolve(True).fingerprint("fake:1")
    assert {r["settings"] for r in res.rows} == {settings}
    for row in res.rows:  # one part per video, read with pyarrow alone
        part = out / "index" / "parts" / f"{VideoItem(row['source']).source_id}.parquet"
        assert pq.read_table(part).to_pylist() == [row]
    index = pq.read_table(out / "features.parquet").to_pylist()
    assert [r["source"] for r in index] == sorted(r["source"] for r in res.rows)
    ok = next(r for r in index if r["status"] == "ok")
    assert (ok["tokens"], ok["trajectories"], ok["sampled_frames"], ok["no_face_frames"]) == (10, 2, 12, 2)
    z = records.read_features(out / ok["npz"])
    assert z["frame_ind"].tolist() == [f for f in range(0, N, 2) if f in FACE_FRAMES]
    assert not list(out.rglob("*.part")) and not (out / ".fx-lock").exists()


def test_stats_json_is_derived_from_the_rows_and_the_model(first):
    out, res, model = first
    stats = json.loads((out / "stats.json").read_text())
    assert stats == json.loads(json.dumps(res.stats, default=str))
    error = next(r["error"] for r in res.rows if r["status"] == "error")
    assert model.calls == [4, 4, 2] and model.seconds == 0.75  # 10 face crops in batches of 4
    opts = _opts().validate().resolve(True)
    want = {"inputs": 4, "videos": {"error": 1, "no_face": 1, "skipped": 1, "ok": 1}, "failed": 1,
            "failures": [error], "resumed_skipped": 0, "trajectories": 2, "tokens": 10,
            "no_face_frames": 2 + 12,  # two.mp4's frames 10 and 12, and every sampled frame of grey.mp4
            "model_seconds": 0.75, "model_frames_per_second": round(10 / 0.75, 2), "model": {"model": "fake"},
            "features": ["tokens"], "options": json.loads(json.dumps(opts.to_dict()))}
    wall = stats.pop("wall_seconds")
    assert stats == want
    assert isinstance(wall, float) and 0 < wall < 60 and wall == round(wall, 3)
    assert stats["options"]["face_backend"] == BACKEND and "executor" not in stats


def test_resume_skips_final_rows_and_retries_errors(first, folder, tmp_path, caplog):
    out = tmp_path / "OUT"
    shutil.copytree(first[0], out)
    ok = next(r for r in first[1].rows if r["status"] == "ok")
    stamp = (out / ok["npz"]).stat().st_mtime_ns
    model = FakeModel()
    with caplog.at_level(logging.INFO, logger="fx"):
        again = extract_features([folder], model, out, _opts(), raise_on_failure=False)
    assert f"resume: 3 of 4 inputs already done in {out}" in caplog.text
    assert model.calls == [] and (out / ok["npz"]).stat().st_mtime_ns == stamp
    assert again.stats["resumed_skipped"] == 3 and again.stats["inputs"] == 4
    # the done rows come back as they were, then the retried error
    assert _names(again.rows) == [("grey.mp4", "no_face"), ("notes.txt", "skipped"), ("two.mp4", "ok"),
                                  ("corrupt.mp4", "error")]
    assert again.rows[2] == ok
    assert again.stats["videos"] == first[1].stats["videos"] and again.stats["tokens"] == 10
    assert again.stats["model_seconds"] == 0.0 and again.stats["model_frames_per_second"] is None
    # a missing output file makes its video redone; so does an unreadable part
    (out / ok["npz"]).unlink()
    part = out / "index" / "parts" / f"{VideoItem(ok['source']).source_id}.parquet"
    grey = next(r for r in first[1].rows if r["status"] == "no_face")
    grey_part = out / "index" / "parts" / f"{VideoItem(grey['source']).source_id}.parquet"
    grey_part.write_bytes(b"garbage")
    third = extract_features([folder], model, out, _opts(), raise_on_failure=False)
    assert third.stats["resumed_skipped"] == 1 and model.calls == [4, 4, 2]
    assert (out / ok["npz"]).is_file() and pq.read_table(part).column("status").to_pylist() == ["ok"]
    assert pq.read_table(grey_part).column("status").to_pylist() == ["no_face"]  # rewritten whole


def test_resume_off_and_other_settings_redo_everything(first, folder, tmp_path):
    out = tmp_path / "OUT"
    shutil.copytree(first[0], out)
    model = FakeModel()
    res = extract_features([folder], model, out, _opts(), resume=False, raise_on_failure=False)
    assert res.stats["resumed_skipped"] == 0 and model.calls == [4, 4, 2]
    model = FakeModel()
    res = extract_features([folder], model, out, _opts(batch_size=3, stride=3), raise_on_failure=False)
    assert res.stats["resumed_skipped"] == 0  # the stride is a setting (even of the skipped notes.txt's row)
    assert next(r for r in res.rows if r["status"] == "ok")["sampled_frames"] == 8


def test_failures_raise_after_the_index_is_written(folder, tmp_path):
    out = tmp_path / "o"
    with pytest.raises(BatchFailures) as exc:
        extract_features([folder / "corrupt.mp4", folder / "grey.mp4"], FakeModel(), out, _opts())
    assert exc.value.failed == 1 and exc.value.total == 2
    assert str(exc.value).startswith(f"1 of 2 items failed, see {out / 'features.parquet'}")
    assert (out / "features.parquet").is_file() and (out / "stats.json").is_file()
    res = extract_features([folder / "grey.mp4"], FakeModel(), tmp_path / "p", _opts())  # nothing failed
    assert res.failed == 0 and res.stats["failures"] == []


def test_several_workers_need_another_executor(folder, tmp_path):
    with pytest.raises(UsageError) as exc:
        extract_features([folder], FakeModel(), tmp_path / "o", _opts(), executor=ExecutorSpec(workers=2))
    assert exc.value.message == "fx extract-feats runs its videos in this process; --workers N needs --executor ray"
    assert not (tmp_path / "o").exists()


def test_without_tokens_the_model_is_not_loaded(folder, tmp_path):
    out = tmp_path / "o"
    res = extract_features([folder / "two.mp4"], "/no/such/model", out, _opts(features="landmarks"))
    row = res.rows[0]
    assert row["status"] == "ok" and row["backend"] is None and row["token_dim"] is None
    assert row["settings"] == _opts(features="landmarks").validate().resolve(True).fingerprint("none")
    s = res.stats
    assert s["model"] is None and s["model_seconds"] is None and s["model_frames_per_second"] is None
    assert s["features"] == ["landmarks"] and s["tokens"] == 10
    assert records.read_features(out / row["npz"])["landmarks"].shape == (10, 68, 2)


def test_another_executor_runs_the_same_job(folder, tmp_path):
    out = tmp_path / "o"
    Inline.seen.clear()
    model = FakeModel(device="cuda:7")
    res = extract_features([folder], model, out, _opts(), executor=ExecutorSpec(name=EXECUTOR),
                           allow_cpu_fallback=True, raise_on_failure=False)
    (job, label, count), = Inline.seen
    assert label == "extract" and count == 4
    assert job.out == str(out.resolve()) and job.model is model and job.device == "cuda:7"
    assert job.allow_cpu_fallback is True and job.resources.num_gpus == 1
    assert job.settings == _opts().validate().resolve(True).fingerprint("fake:1") and job.opts.stride == 2
    assert _names(res.rows) == [("corrupt.mp4", "error"), ("grey.mp4", "no_face"), ("notes.txt", "skipped"),
                                ("two.mp4", "ok")]
    assert res.stats["executor"] == {"executor": EXECUTOR, "wall_seconds": 1.5, "shards": 1, "retried_items": 0,
                                     "failed_items": 0, "nodes": {"node-a": {"items": 4, "busy_seconds": 2.0,
                                                                             "items_per_second": round(4 / 1.5, 3)}}}
    assert json.loads((out / "stats.json").read_text())["executor"] == res.stats["executor"]
    for row in res.rows:
        assert (records.parts_dir(out) / f"{row['source_id']}.parquet").is_file()
    assert res.stats["tokens"] == 10 and model.calls == [4, 4, 2]
    Inline.seen.clear()
    again = extract_features([folder], model, out, _opts(), executor=ExecutorSpec(name=EXECUTOR),
                             raise_on_failure=False)
    assert [c for _, _, c in Inline.seen] == [1]  # only the error is retried
    Inline.seen.clear()
    extract_features([folder / "grey.mp4"], model, out, _opts(), executor=ExecutorSpec(name=EXECUTOR))
    assert Inline.seen == []  # nothing to do: the executor is not started
    assert again.stats["resumed_skipped"] == 3


def test_another_executor_without_a_model_asks_for_the_run_device(folder, tmp_path):
    Inline.seen.clear()
    extract_features([folder / "two.mp4"], None, tmp_path / "o", _opts(features="landmarks"),
                     executor=ExecutorSpec(name=EXECUTOR), device="cuda:3")
    (job, _, _), = Inline.seen
    assert job.model is None and job.device == "cuda:3" and job.allow_cpu_fallback is False


# --- the pieces --------------------------------------------------------------------------------------------------
def test_merge_row_writes_a_part_only_where_none_is(tmp_path):
    item = VideoItem("/v/a.mp4")
    row = records.new_row(item, "error", "lost with its worker", settings="S")
    assert R.merge_row(tmp_path, row) is row
    part = records.parts_dir(tmp_path) / f"{item.source_id}.parquet"
    assert pq.read_table(part).to_pylist() == [row]
    other = dict(row, error="a later message")
    R.merge_row(tmp_path, other)
    assert pq.read_table(part).column("error").to_pylist() == ["lost with its worker"]  # the worker's part stays


def test_extract_job_contract(tmp_path):
    job = R.ExtractJob(str(tmp_path), _opts(subject="ann"), "S", FakeModel(), "cpu")
    item = VideoItem("/v/a.mp4", label="happy")
    assert job.key(item) == item.source_id and job.checkpoint_root() == str(tmp_path) and job.ordered is True
    row = job.failed(item, "worker died")
    assert (row["status"], row["error"], row["settings"], row["label_id"]) == ("error", "worker died", "S", 3)
    assert (job.resources.num_cpus, job.resources.num_gpus, job.resources.memory_mb) == (1, 0, 2048)
    assert R.ExtractJob(str(tmp_path), _opts(), "S", None, "cuda").resources.num_gpus == 1
    back = pickle.loads(pickle.dumps(job))  # the model travels as its folder, backend and subject
    assert back.model is None and back.model_ref == ("/no/such/fake", "fake", "ann")
    assert back.settings == "S" and back.out == str(tmp_path) and back.opts.subject == "ann"
    assert "model" not in job.__getstate__() and job.model is not None  # the live job keeps its model
    assert pickle.loads(pickle.dumps(R.ExtractJob(str(tmp_path), _opts(), "S"))).model_ref is None


def test_a_worker_loads_the_model_and_backend_once(tmp_path, monkeypatch):
    loads, emotions = [], []
    fake = FakeModel()

    def load(*a, **k):
        loads.append((a, k))
        return fake

    monkeypatch.setattr(ExpressionModel, "load", staticmethod(load))
    monkeypatch.setattr(R, "load_emotion", lambda device, batch: emotions.append((device, batch)) or "EMO")
    opts = _opts(subject=2, features="tokens,emotion").validate().resolve(True)
    job = R.ExtractJob(str(tmp_path), opts, "S", FakeModel(), "cuda:1", allow_cpu_fallback=True)
    worker = pickle.loads(pickle.dumps(job))
    model, emotion, face = worker._models()
    assert model is fake and emotion == "EMO" and isinstance(face, Bright)
    assert loads == [(("/no/such/fake", "fake", "cuda:1"), {"subject": 2, "allow_cpu_fallback": True})]
    assert emotions == [("cuda:1", 4)]
    assert worker._models()[0] is model and len(loads) == 1  # cached per worker process
    again = pickle.loads(pickle.dumps(job))
    assert again._models()[2] is face and len(loads) == 1  # the same job's key: same cache entry
    local = R.ExtractJob(str(tmp_path), _opts().validate().resolve(True), "S", fake, "cpu")
    assert local._models()[0] is fake and local._models()[1] is None and len(loads) == 1


def test_run_item_writes_the_video_and_its_part(folder, tmp_path):
    job = R.ExtractJob(str(tmp_path), _opts().validate().resolve(True), "S", FakeModel(), "cpu")
    item = VideoItem(str((folder / "two.mp4").resolve()))
    row = job.run_item(item)
    assert row["status"] == "ok" and row["settings"] == "S" and row["tokens"] == 10
    assert pq.read_table(records.parts_dir(tmp_path) / f"{item.source_id}.parquet").to_pylist() == [row]
    assert (tmp_path / row["npz"]).is_file()


def _r(status, **kw):
    return {"status": status, "error": kw.pop("error", None), "trajectories": None, "tokens": None,
            "no_face_frames": None, **kw}


def test_run_stats_rules():
    rows = [_r("ok", trajectories=2, tokens=30, no_face_frames=4), _r("ok"),
            _r("error", error="b", tokens=99, trajectories=9, no_face_frames=1), _r("error", error="a"),
            _r("error", error="b"), _r("no_face", no_face_frames=7, tokens=0), _r("skipped")]
    opts = ExtractOptions(stride=3, features=("mesh",))
    s = R.run_stats(rows, None, opts, 1.23456, inputs=9, resumed=2)
    assert s["inputs"] == 9 and s["resumed_skipped"] == 2 and s["wall_seconds"] == 1.235
    assert s["videos"] == {"ok": 2, "error": 3, "no_face": 1, "skipped": 1} and s["failed"] == 3
    assert s["failures"] == ["a", "b"]  # once each, sorted
    assert s["trajectories"] == 2 and s["tokens"] == 30  # ok rows only
    assert s["no_face_frames"] == 4 + 1 + 7  # every row's
    assert s["model"] is None and s["model_seconds"] is None and s["model_frames_per_second"] is None
    assert s["options"] == opts.to_dict() and s["features"] == ["mesh"]
    many = [_r("error", error=f"e{i:03d}") for i in range(60)]
    s = R.run_stats(many, None, ExtractOptions(features=("tokens",)), 0.0, inputs=60, resumed=0)
    assert s["failures"] == [f"e{i:03d}" for i in range(50)] and s["failed"] == 60 and s["features"] == ["tokens"]
    m = FakeModel()
    m.seconds, m.frames = 2.0004, 7
    s = R.run_stats([], m, opts, 0.0, inputs=0, resumed=0)
    assert s["model_seconds"] == 2.0 and s["model_frames_per_second"] == round(7 / 2.0004, 2)
    assert s["model"] == {"model": "fake"} and s["tokens"] == 0 and s["failures"] == []


def test_a_model_folder_is_loaded_with_the_run_arguments(folder, tmp_path, monkeypatch):
    loads = []

    def load(*a, **k):
        loads.append((a, k))
        return FakeModel()

    monkeypatch.setattr(ExpressionModel, "load", staticmethod(load))
    res = extract_features([folder / "two.mp4"], "some/run", tmp_path / "o", _opts(subject="ann"), backend="onnx",
                           device="cuda:2", allow_cpu_fallback=True)
    assert loads == [(("some/run", "onnx", "cuda:2"), {"subject": "ann", "allow_cpu_fallback": True})]
    assert res.rows[0]["backend"] == "fake" and res.stats["tokens"] == 10


def test_emotion_and_face_options_reach_every_video(folder, tmp_path, monkeypatch):
    made = []

    class Emotion:
        def predict(self, crops):
            return type("P", (), {"probabilities": np.full((len(crops), 7), 1 / 7, np.float32)})()

    monkeypatch.setattr(R, "check_weights", lambda features, backend: None)  # no weight files in this test
    monkeypatch.setattr(R, "load_emotion", lambda device, batch: made.append((device, batch)) or Emotion())
    res = extract_features([folder / "two.mp4"], None, tmp_path / "o", _opts(features="emotion", batch_size=5),
                           device="cuda:4")
    assert made == [("cuda:4", 5)]
    z = records.read_features(tmp_path / "o" / res.rows[0]["npz"])
    assert z["emotion"].shape == (10, 7)
    np.testing.assert_allclose(z["emotion"], 1 / 7)
    # a backend option: detections scored 0.875 fall under a 0.9 threshold, so no face is found
    res = extract_features([folder / "two.mp4"], FakeModel(), tmp_path / "p",
                           _opts(face_options={"score_threshold": 0.9}))
    assert res.rows[0]["status"] == "no_face"


def test_an_out_folder_inside_the_inputs_is_not_an_input(folder, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(folder, inputs)
    out = inputs / "OUT"
    extract_features([inputs], FakeModel(), out, _opts(), raise_on_failure=False)
    again = extract_features([inputs], FakeModel(), out, _opts(), raise_on_failure=False)
    assert again.stats["inputs"] == 4 and again.stats["resumed_skipped"] == 3
    assert not any("/OUT/" in r["source"] for r in again.rows)


def test_the_worker_cache_is_keyed_by_device(tmp_path, monkeypatch):
    loads = []
    monkeypatch.setattr(ExpressionModel, "load", staticmethod(lambda *a, **k: loads.append(a) or FakeModel()))
    opts = _opts().validate().resolve(True)
    for device in ("cpu", "cuda:0", "cpu"):
        pickle.loads(pickle.dumps(R.ExtractJob(str(tmp_path), opts, "S", FakeModel(), device)))._models()
    assert [a[2] for a in loads] == ["cpu", "cuda:0"]
