"""`fx train audio2expr` under torchrun (two gloo processes on the CPU): the ranks' gradients are averaged.

Rank 0 draws the same windows as a single process with the same seed (batches come from (seed, step, rank)), and a
single process is bit-for-bit repeatable; so the DDP run's weights equal the single run's exactly when the other
rank contributes nothing (a runner that forgot DDP), and differ when it does.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch


def _weights(run):
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / "step_000004" / "audio2expr.safetensors"))


def _args(trained, speaking, out):
    return ["train", "audio2expr", "--recipe", "audio2expr-tiny", f"data.path={speaking['train']}",
            f"data.cache={trained['run'] / 'targets'}", "trainer.max_steps=4", "--out", str(out)]


def test_two_ranks_average_their_gradients(trained, speaking, tmp_path):
    from faceexpr_cli.cli.app import main

    singles = []
    for name in ("a", "b"):
        assert main(_args(trained, speaking, tmp_path / name)) == 0
        singles.append(_weights(tmp_path / name))
    for k in singles[0]:
        assert torch.equal(singles[0][k], singles[1][k]), f"single-process runs differ at {k}"
    env = {**{k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")},
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "faceexpr_cli", *_args(trained, speaking, tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = _weights(tmp_path / "ddp")
    assert set(ddp) == set(singles[0])
    changed = [k for k in ddp if not torch.equal(ddp[k], singles[0][k]) and ddp[k].dtype.is_floating_point]
    assert len(changed) >= len(ddp) // 2, changed  # the second rank's gradients moved the weights
    assert torch.equal(ddp["basis_components"], singles[0]["basis_components"])  # one basis, fitted on all clips
