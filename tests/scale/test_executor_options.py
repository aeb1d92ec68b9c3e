"""The executor options without a cluster: one-line errors before any folder is made, the shard plan, and the
per-item checkpoints a retried shard reads."""

from __future__ import annotations

import sys

import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.executors.shards import Checkpoints, auto_shard_size, plan_shards


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--executor", "spark"], 2, "unknown executor 'spark' (known: local, ray)"),
    (["--ray-address", "auto"], 2, "--ray-address needs --executor ray"),
    (["--executor", "ray", "--shard-size", "0"], 2, "--shard-size"),
])
def test_bad_executor_options_are_one_line(crop_inputs, tmp_path, capsys, args, code, message):
    out = tmp_path / "out"
    assert main(["crop", str(crop_inputs), "--out", str(out), *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_a_missing_ray_is_one_line_and_makes_no_folder(crop_inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as when the extra is not installed
    out = tmp_path / "out"
    assert main(["crop", str(crop_inputs), "--out", str(out), "--executor", "ray"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: --executor ray needs Ray, which is not installed (pip install 'faceexpr[ray]')"]
    assert not out.exists()


@pytest.mark.parametrize("command", [["clip", "--random", "1"], ["extract-feats", "--features", "landmarks"]])
def test_workers_without_ray_is_refused_where_the_local_path_has_no_pool(crop_inputs, tmp_path, capsys, command):
    out = tmp_path / "out"
    assert main([command[0], str(crop_inputs), *command[1:], "--out", str(out), "--workers", "2"]) == 2
    assert "--workers N needs --executor ray" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("n", "size"), [(0, 3), (1, 1), (7, 3), (9, 3), (100, 32)])
def test_shards_hold_every_item_once_in_order(n, size):
    shards = plan_shards(n, size)
    flat = [p for s in shards for p in s.positions]
    assert flat == list(range(n))
    assert all(1 <= len(s.positions) <= size for s in shards)
    assert [s.index for s in shards] == list(range(len(shards)))


def test_the_automatic_shard_size_leaves_about_four_shards_per_worker():
    assert auto_shard_size(8, 2) == 1
    assert auto_shard_size(80, 2) == 10
    assert auto_shard_size(10_000, 2) == 32  # capped: a dead worker loses little
    assert auto_shard_size(3, 16) == 1


def test_checkpoints_round_trip_and_a_cut_file_counts_as_unfinished(tmp_path):
    cp = Checkpoints(str(tmp_path), "run1")
    assert cp.get("a") is None and cp.count() == 0
    cp.put("a", ([{"x": 1}], "node", 0.5))
    cp.put("b", None)
    assert cp.get("a") == ([{"x": 1}], "node", 0.5) and cp.count() == 2
    cut = tmp_path / ".fx-shards" / "run1" / "c.pkl"
    cut.write_bytes(b"\x80\x05\x95")  # a worker killed while writing (without the rename it cannot happen)
    assert cp.get("c") is None
    assert not list((tmp_path / ".fx-shards" / "run1").glob(".*.part"))
    cp.remove()
    assert not (tmp_path / ".fx-shards").exists()


def test_resource_hints_per_command():
    from faceexpr_cli.crop import CropOptions
    from faceexpr_cli.crop.job import CropJob
    from faceexpr_cli.download.job import DownloadJob
    from faceexpr_cli.download.options import DownloadOptions
    from faceexpr_cli.extract import ExtractOptions
    from faceexpr_cli.extract.run import ExtractJob

    assert CropJob("/o", CropOptions()).resources.num_cpus == 1
    on_gpu = ExtractJob("/o", ExtractOptions(), "s", device="cuda:0").resources
    on_cpu = ExtractJob("/o", ExtractOptions(), "s", device="cpu").resources
    assert (on_gpu.num_gpus, on_cpu.num_gpus) == (1, 0) and on_gpu.memory_mb == 2048
    assert DownloadJob("/o", DownloadOptions(), "/o").resources.num_cpus < 1  # transfers wait on the network


def test_the_local_executor_runs_any_job_in_order_in_this_process(tmp_path):
    import os
    from dataclasses import dataclass

    from faceexpr_cli.executors import ExecutorSpec, Resources, run_items

    @dataclass
    class Square:
        resources: Resources = Resources()

        def key(self, item):
            return str(item)

        def run_item(self, item):
            return (item * item, os.getpid())

        def failed(self, item, error):
            return None

        def checkpoint_root(self):
            return str(tmp_path)

    got = []
    summary = run_items(ExecutorSpec(), Square(), [3, 1, 2], lambda it, r: got.append((it, r)))
    assert got == [(3, (9, os.getpid())), (1, (1, os.getpid())), (2, (4, os.getpid()))]
    assert summary.executor == "local" and sum(n["items"] for n in summary.to_dict()["nodes"].values()) == 3
    assert not (tmp_path / ".fx-shards").exists()
