"""`fx train animator` under torchrun: two gloo processes on the CPU train one model, one writer (rank 0).

Each rank gets other samples (DistributedSampler); after the steps both ranks must hold the same weights (gradients
averaged by DDP) and those must differ from the initial ones. A runner that never wrapped its losses in DDP still
writes one log and one checkpoint, but fails the comparison.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import torch

WORKER = textwrap.dedent('''
    import hashlib, json, os, sys
    from pathlib import Path

    import faceexpr_cli.builders as builders
    from faceexpr_cli.cli.app import main

    built = []
    real = builders.build_model

    def spy(*args, **kwargs):
        model = real(*args, **kwargs)
        if hasattr(model, "kp_detector"):
            built.append((model, digest(model)))
        return model

    def digest(model):
        h = hashlib.sha1()
        for part in ("kp_detector", "generator", "discriminator"):
            for name, p in sorted(getattr(model, part).named_parameters()):
                h.update(f"{part}.{name}".encode())
                h.update(p.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    builders.build_model = spy
    code = main(sys.argv[2:])
    model, init = built[0]
    rank = os.environ.get("RANK", "0")
    Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps({"code": code, "init": init, "final": digest(model)}))
''')


def test_animator_ddp_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp"
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker),
           str(tmp_path), "-q", "train", "animator", "--recipe", "fomm-tiny", "--out", str(out),
           "train.max_steps=2", "train.batch_size=2", "train.scales=[1]", "train.log_every=1",
           "data.num_repeats=4", "train.tensorboard=false"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["code"] == r1["code"] == 0
    # each rank builds its model from its own seed (seed + rank); DDP starts both from rank 0's weights
    assert r0["init"] != r1["init"]
    assert r0["final"] == r1["final"], "ranks trained apart: the model is not synchronised (no DDP?)"
    assert r0["final"] not in (r0["init"], r1["init"]), "no update reached the weights"
    rows = list(csv.DictReader((out / "scalars.csv").open()))
    assert [float(r["step"]) for r in rows] == [1.0, 2.0]  # rank 0 alone writes: no duplicated rows
    ckpts = sorted(out.glob("*-checkpoint.pth.tar"))
    assert ckpts, "rank 0 saves an original-layout checkpoint"
    state = torch.load(ckpts[-1], weights_only=True)
    assert not any(k.startswith("module.") for k in state["generator"]), "DDP's wrapper prefix must not leak"
