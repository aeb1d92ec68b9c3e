"""``--executor ray`` against the local path on one local Ray cluster (2 CPUs): same rows apart from timings,
same files (decoded frames), every item exactly once when a worker dies mid-shard, and Ctrl-C then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from scalecheck import decoded_frames, final_files, rows_without_timing

from faceexpr_cli.crop import CropOptions, crop_videos, read_manifest
from faceexpr_cli.crop.job import CropJob
from faceexpr_cli.executors import ExecutorSpec, Resources, run_items

pytestmark = pytest.mark.timeout(180)

CROP = {"size": 64, "embed": False}


def _manifest_rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(out / "manifest.parquet").to_pylist()


@pytest.fixture(scope="module")
def crop_local(crop_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("crop_local")
    crop_videos([crop_inputs], out, CropOptions(**CROP), raise_on_failure=False)
    return out


def _same_crop_outputs(a: Path, b: Path) -> None:
    ra, rb = _manifest_rows(a), _manifest_rows(b)
    assert rows_without_timing(ra) == rows_without_timing(rb)
    assert final_files(a) == final_files(b)
    clips = [r["clip"] for r in ra if r["status"] == "ok"]
    assert len(clips) == 4
    for clip in clips:
        fa, fb = decoded_frames(a / clip), decoded_frames(b / clip)
        assert fa.shape == fb.shape and (fa == fb).all(), clip


def test_crop_on_ray_equals_local(ray_address, crop_inputs, crop_local, tmp_path):
    out = tmp_path / "ray"
    result = crop_videos([crop_inputs], out, CropOptions(**CROP), raise_on_failure=False,
                         executor=ExecutorSpec("ray", shard_size=2))
    _same_crop_outputs(crop_local, out)
    statuses = sorted(r["status"] for r in result.rows)
    assert statuses == ["error", "ok", "ok", "ok", "ok", "skipped"]
    # the rows came from Ray's worker processes, not from this one
    assert {r["worker_pid"] for r in result.rows if r["status"] == "ok"} - {os.getpid()}
    ex = result.stats["executor"]
    assert ex["shards"] == 3 and sum(n["items"] for n in ex["nodes"].values()) == 6
    assert not (out / ".fx-shards").exists()
    # a second run resumes: nothing is redone
    again = crop_videos([crop_inputs], out, CropOptions(**CROP), raise_on_failure=False,
                        executor=ExecutorSpec("ray", shard_size=2))
    assert again.stats["resumed_skipped"] == 5  # the corrupt video is tried again, as locally


@dataclass
class DyingCropJob(CropJob):
    """Kills its own worker process in the middle of ``v1.mp4`` the first time (a marker file remembers)."""

    marker: str = ""

    def run_item(self, item):
        with open(self.marker + ".calls", "a") as f:
            f.write(Path(item.source).name + "\n")
        if item.source.endswith("v1.mp4") and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run_item(item)


def _by_value():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test file


def test_a_killed_worker_loses_and_repeats_nothing(ray_address, crop_inputs, crop_local, tmp_path):
    from faceexpr_cli.crop.inputs import expand_inputs
    from faceexpr_cli.crop.job import merge_rows

    _by_value()
    out = tmp_path / "ray"
    out.mkdir()
    items = expand_inputs([crop_inputs])
    marker = str(tmp_path / "killed")
    job = DyingCropJob(str(out), CropOptions(**CROP).validate(), marker=marker)
    seen: list[str] = []

    def on_result(item, rows):
        seen.append(item.source)
        merge_rows(out, item, rows)

    # shard 0 is [corrupt, notes] and shard 1 [v0, v1]: v0 is finished and checkpointed when v1 kills the worker
    summary = run_items(ExecutorSpec("ray", shard_size=2), job, items, on_result)
    assert os.path.exists(marker), "the worker was never killed: the test proves nothing"
    assert sorted(seen) == sorted(it.source for it in items)  # each item exactly once
    calls = Path(marker + ".calls").read_text().split()
    assert calls.count("v1.mp4") == 2  # run again after the kill
    assert calls.count("v0.mp4") == 1  # taken from its checkpoint, not redone
    assert summary.retried_items == 1 and summary.failed_items == 0
    from faceexpr_cli.crop import manifest as mf

    rows = mf.read_parts(out)
    assert rows_without_timing(rows) == rows_without_timing(_manifest_rows(crop_local))


@dataclass
class AlwaysDying:
    """A light job whose item 3 always kills its worker: past every retry it is a failed result."""

    root: str
    resources: Resources = Resources(max_retries=1)

    def key(self, item):
        return f"item{item}"

    def run_item(self, item):
        if item == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"item": item, "ok": True}

    def failed(self, item, error):
        return {"item": item, "ok": False, "error": error}

    def checkpoint_root(self):
        return self.root


def test_a_shard_that_dies_past_its_retries_becomes_failed_rows(ray_address, tmp_path):
    _by_value()
    got: dict[int, dict] = {}

    def on_result(item, result):
        assert item not in got
        got[item] = result

    summary = run_items(ExecutorSpec("ray", shard_size=2), AlwaysDying(str(tmp_path)), list(range(6)), on_result)
    assert sorted(got) == list(range(6))
    assert got[2] == {"item": 2, "ok": True}  # finished before the kill in the same shard: kept
    assert got[3]["ok"] is False and "ray worker failed" in got[3]["error"]
    assert all(got[i]["ok"] for i in (0, 1, 2, 4, 5))
    assert summary.failed_items == 1
    assert not (tmp_path / ".fx-shards").exists()


def test_ctrl_c_of_the_driver_then_resume(ray_address, crop_inputs, tmp_path):
    out = tmp_path / "out"
    # --stride 1 and one video per task make the run long enough for Ctrl-C to land in its middle
    args = ["crop", str(crop_inputs), "--out", str(out), "--size", "64", "--no-embed", "--executor", "ray",
            "--ray-address", ray_address, "--shard-size", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "faceexpr_cli", *args, "--stride", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    parts = out / "manifest" / "parts"
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 90:
        # the first row: Ctrl-C then lets the (at most 2) running shards finish, and the rest is never started
        if len(list(parts.glob("*.parquet"))) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    df = read_manifest(out / "manifest.parquet")
    done = set(df["source"])
    assert 1 <= len(done) < 6, "the run finished before the interrupt: the test proves nothing"
    ok = {r["clip"] for _, r in df.iterrows() if r["status"] == "ok"}
    on_disk = {p.relative_to(out).as_posix() for p in (out / "clips").rglob("*.mp4") if not p.name.startswith(".")}
    assert on_disk == ok  # no clip without its row
    assert not list(out.rglob("*.part")) and not (out / ".fx-shards").exists()
    assert json.loads((out / "stats.json").read_text())["interrupted"] is True
    # the re-run (stride 10 again would change the settings; keep --stride 1) skips what finished
    again = crop_videos([crop_inputs], out, CropOptions(**CROP, stride=1), raise_on_failure=False,
                        executor=ExecutorSpec("ray"))
    finished_ok = len(done - {str(crop_inputs / "corrupt.mp4")})
    assert again.stats["resumed_skipped"] == finished_ok
    assert sorted(r["status"] for r in again.rows) == ["error", "ok", "ok", "ok", "ok", "skipped"]


def _clip_run(inputs: Path, out: Path, executor: ExecutorSpec | None):
    from faceexpr_cli.clip.inputs import resolve_inputs
    from faceexpr_cli.clip.pipeline import ClipSettings, run_clip
    from faceexpr_cli.clip.windows import WindowSpec

    settings = ClipSettings(random=2, seed=3, window=WindowSpec(pre=0.0, post=0.6), shard_count=3)
    return run_clip(resolve_inputs([inputs]), out, settings, executor=executor)


def test_clip_on_ray_equals_local(ray_address, crop_inputs, tmp_path):
    import pyarrow.parquet as pq

    local, ray_out = tmp_path / "local", tmp_path / "ray"
    a = _clip_run(crop_inputs, local, None)
    b = _clip_run(crop_inputs, ray_out, ExecutorSpec("ray", shard_size=2))
    assert a.stats["clips"] == 8 and a.stats["inputs"]["failed"] == 1
    drop = {"wall_seconds", "executor"}
    assert {k: v for k, v in a.stats.items() if k not in drop} == {k: v for k, v in b.stats.items() if k not in drop}
    assert pq.read_table(local / "index.parquet").to_pylist() == pq.read_table(ray_out / "index.parquet").to_pylist()
    names = final_files(local)
    assert names == final_files(ray_out) and sum(n.endswith(".tar") for n in names) == 3  # 8 clips, 3 per shard
    for name in names:
        if name.endswith((".tar", ".parquet")):
            assert (local / name).read_bytes() == (ray_out / name).read_bytes(), name


@pytest.fixture(scope="module")
def tiny_joint_run(tmp_path_factory) -> Path:
    """One step of the joint-tiny recipe (random tiny tokenizer, 56 px): a real run folder for --model."""
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    base = tmp_path_factory.mktemp("joint")
    clips = make_sample_clips(base / "clips", seconds=0.4, size=56, clips_per_subject=1)
    recipe = load_recipe("joint-tiny", [f"data.path={clips}", "trainer.max_steps=1", "trainer.save_every=1",
                                        "trainer.eval_every=0", "trainer.log_every=1", "trainer.tensorboard=false",
                                        "data.workers=0"])
    run(recipe, base / "run")
    return base / "run"


def test_extract_feats_on_ray_equals_local(ray_address, crop_inputs, tiny_joint_run, tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    from faceexpr_cli.extract import ExtractOptions, extract_features

    opts = ExtractOptions(stride=4, face_backend="dlib")
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    a = extract_features([crop_inputs], tiny_joint_run, local, opts, raise_on_failure=False)
    b = extract_features([crop_inputs], tiny_joint_run, ray_out, opts, raise_on_failure=False,
                         executor=ExecutorSpec("ray", shard_size=2))
    assert a.stats["videos"] == {"ok": 4, "error": 1, "skipped": 1} and a.stats["tokens"] > 0
    ra, rb = (pq.read_table(d / "features.parquet").to_pylist() for d in (local, ray_out))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(ra) == strip(rb)  # same rows, same order
    assert b.stats["tokens"] == a.stats["tokens"] and b.stats["executor"]["shards"] == 3
    assert final_files(local) == final_files(ray_out)
    for r in ra:
        if r["npz"]:
            za, zb = np.load(local / r["npz"]), np.load(ray_out / r["npz"])
            assert sorted(za.files) == sorted(zb.files)
            for k in za.files:
                assert np.allclose(za[k], zb[k], atol=1e-5), (r["npz"], k)


@pytest.fixture
def moto_s3(monkeypatch):
    """A moto S3 server on 127.0.0.1 (as tests/download starts it) with a bucket ``dst``."""
    from moto.server import ThreadedMotoServer

    # the credentials tests/scale/conftest.py gives the Ray cluster (not imported: several conftest modules
    # share that name when files of many folders run in one process)
    fake_aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in fake_aws.items():
        monkeypatch.setenv(k, v)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import requests
    import s3fs

    # moto keeps its buckets per process, across servers: start from none (another test file may have run here)
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir("dst")
    try:
        yield fs, {"s3": {"endpoint_url": endpoint}}
    finally:
        moto.stop()


def test_download_on_ray_to_an_s3_bucket_equals_local(ray_address, moto_s3, tmp_path):
    import numpy as np

    from faceexpr_cli.download.options import DownloadOptions, VideoOptions
    from faceexpr_cli.download.retry import RetryPolicy
    from faceexpr_cli.download.runner import download_manifest

    fs, storage = moto_s3
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(5)
    blobs = {f"f{i}.bin": rng.integers(0, 256, 20_000 + 1000 * i, dtype=np.uint8).tobytes() for i in range(6)}
    for name, data in blobs.items():
        (src / name).write_bytes(data)
    manifest = tmp_path / "list.txt"
    manifest.write_text("".join(f"{src / n}\n" for n in blobs) + f"{src / 'missing.bin'}\n")

    def options(staging):
        return DownloadOptions(jobs=2, retry=RetryPolicy(attempts=1, scale=0.01, seed=0), video=VideoOptions(),
                               storage_options=storage, staging=staging)

    local = download_manifest(manifest, tmp_path / "local", options(None), progress=False)
    remote = download_manifest(manifest, "s3://dst/raw", options(tmp_path / "staging"), progress=False,
                               executor=ExecutorSpec("ray", shard_size=3))
    assert [r["status"] for r in remote.records] == ["ok"] * 6 + ["failed"]
    for name, data in blobs.items():
        assert fs.cat_file(f"dst/raw/{name}") == data, name
    keep = ("key", "name", "status", "bytes", "sha256", "error_class", "attempts", "files")
    assert [{k: r.get(k) for k in keep} for r in remote.records] == [{k: r.get(k) for k in keep}
                                                                      for r in local.records]
    assert remote.transferred == local.transferred == sum(len(b) for b in blobs.values())
    assert not [p for p in fs.find("dst/raw") if ".fx-shards" in p]
    assert not list((tmp_path / "staging").rglob("*.part")) and not (tmp_path / "staging" / ".fx-shards").exists()
    # a second run skips every file already in the bucket
    again = download_manifest(manifest, "s3://dst/raw", options(tmp_path / "staging"), progress=False,
                              executor=ExecutorSpec("ray"))
    assert [r["status"] for r in again.records] == ["skipped"] * 6 + ["failed"]


def test_a_gpu_job_on_a_cluster_without_gpus_is_one_line_not_a_hang(ray_address, tmp_path):
    from faceexpr_cli.errors import UsageError

    job = AlwaysDying(str(tmp_path), resources=Resources(num_gpus=1))
    with pytest.raises(UsageError, match="no GPU for --device cuda"):
        run_items(ExecutorSpec("ray"), job, [0, 1], lambda *_: None)


def test_clip_on_ray_interrupted_then_resumed_holds_every_clip_once(ray_address, crop_inputs, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from faceexpr_cli.clip import job as clip_job

    local, out = tmp_path / "local", tmp_path / "ray"
    _clip_run(crop_inputs, local, None)
    real, calls = clip_job.replay, []

    def replay_then_ctrl_c(ops, writer):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C in the driver after two inputs were merged into the dataset
            raise KeyboardInterrupt
        real(ops, writer)

    monkeypatch.setattr(clip_job, "replay", replay_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _clip_run(crop_inputs, out, ExecutorSpec("ray", shard_size=1))
    monkeypatch.setattr(clip_job, "replay", real)
    again = _clip_run(crop_inputs, out, ExecutorSpec("ray", shard_size=1))
    # of the two merged inputs (corrupt.mp4, a failed row, and v0.mp4) the finished one is not cut again
    assert again.stats["inputs"]["skipped_as_done"] == 1
    ok = lambda d: sorted(r["key"] for r in pq.read_table(d / "index.parquet").to_pylist()  # noqa: E731
                          if r["status"] == "ok")
    assert ok(out) == ok(local) and len(ok(out)) == 8  # every clip, once
    assert not (out / ".fx-shards").exists()
