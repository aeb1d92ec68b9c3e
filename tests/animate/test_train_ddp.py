"""`fx train animator` under torchrun: two gloo processes on the CPU, one writer (rank 0)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import torch


def test_animator_ddp_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "faceexpr_cli", "-q", "train", "animator", "--recipe", "fomm-tiny", "--out", str(out),
           "train.max_steps=2", "train.batch_size=2", "train.scales=[1]", "train.log_every=1",
           "data.num_repeats=4", "train.tensorboard=false"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((out / "scalars.csv").open()))
    assert [float(r["step"]) for r in rows] == [1.0, 2.0]  # rank 0 alone writes: no duplicated rows
    ckpts = sorted(out.glob("*-checkpoint.pth.tar"))
    assert ckpts, "rank 0 saves an original-layout checkpoint"
    state = torch.load(ckpts[-1], weights_only=True)
    assert not any(k.startswith("module.") for k in state["generator"]), "DDP's wrapper prefix must not leak"
