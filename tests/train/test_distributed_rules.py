"""The single-process side of DDP: rank and world from the environment, the device chosen, and the no-op
collectives (multi-process runs: test_ddp.py)."""

from __future__ import annotations

import pytest
import torch

from faceexpr_cli.errors import UsageError
from faceexpr_cli.train import distributed as D


def test_dist_info_defaults_and_roles():
    info = D.DistInfo()
    assert (info.rank, info.world, info.local_rank, info.device) == (0, 1, 0, torch.device("cpu"))
    assert info.main and not info.active
    assert not D.DistInfo(rank=1, world=2).main and D.DistInfo(rank=1, world=2).active


def test_setup_reads_rank_and_world_from_the_environment(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = D.setup("cpu")
    assert (info.rank, info.world, info.local_rank, info.device) == (0, 1, 0, torch.device("cpu"))
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "2")
    info = D.setup("cpu")  # a world of one: no process group is started
    assert (info.rank, info.world, info.local_rank) == (3, 1, 2) and not info.main
    assert not torch.distributed.is_initialized()


def test_pick_device(monkeypatch):
    assert D.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError, match="'banana': unknown device"):
        D.pick_device("banana")
    monkeypatch.setattr(D, "check_device", lambda value, flag: "cuda")
    assert D.pick_device("cuda", 2) == torch.device("cuda", 2)  # a bare cuda is this process's local GPU
    assert D.pick_device("cuda") == torch.device("cuda", 0)
    monkeypatch.setattr(D, "check_device", lambda value, flag: "cuda:1")
    assert D.pick_device("cuda:1", 3) == torch.device("cuda", 1)  # an explicit index stays


def test_single_process_collectives_are_no_ops():
    info = D.DistInfo()
    assert D.any_flag(info, True) is True and D.any_flag(info, False) is False
    assert D.barrier(info) is None and D.teardown(info) is None


def test_collectives_on_a_one_process_group(tmp_path):
    """A gloo group of one process stands in for the ranks: the flag travels through all_reduce, and teardown ends
    the group."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        info = D.DistInfo(world=2)  # active: the collectives are really called
        assert D.any_flag(info, True) is True and D.any_flag(info, False) is False
        D.barrier(info)
        D.teardown(info)
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
