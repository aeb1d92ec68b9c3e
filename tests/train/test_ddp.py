"""`fx train joint` under torchrun (two gloo processes on the CPU): the ranks train one model together.

Each rank draws other clips; after the steps every rank must hold the same weights (gradients are averaged), and
those weights must differ from the initial ones and from what rank 0's data alone gives in one process. A runner
that forgot to wrap the model in DDP still writes one log and one checkpoint, but fails both comparisons.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


def _args(clip_folder, out) -> list[str]:
    return ["-q", "train", "joint", "--recipe", "joint-tiny", "--out", str(out), f"data.path={clip_folder}",
            "trainer.max_steps=2", "trainer.tensorboard=false", "data.workers=0", "trainer.log_every=1"]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, clip_folder):
    root = tmp_path_factory.mktemp("ddp")
    out = root / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(root), *_args(clip_folder, out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((root / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out, ranks


@pytest.fixture(scope="module")
def single_run(tmp_path_factory, clip_folder):
    """The same command in one process (world 1, rank 0): rank 0's batches without the other rank's gradients."""
    root = tmp_path_factory.mktemp("single")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, str(WORKER), str(root), *_args(clip_folder, root / "run")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "rank0.json").read_text())


def _checkpoint_digest(ckpt: Path) -> str:
    from faceexpr_cli.train import checkpoint as C

    sys.path.insert(0, str(WORKER.parent))
    try:
        from ddp_worker import digest
    finally:
        sys.path.remove(str(WORKER.parent))

    class Held:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return self.state

    return digest({role: Held(C.read_model_file(ckpt / f"{role}.safetensors")[0])
                   for role in ("expression", "reconstruction")})


def test_ranks_draw_different_data_and_end_with_the_same_weights(ddp_run, single_run):
    out, (r0, r1) = ddp_run
    assert r0["code"] == r1["code"] == 0 and r0["world"] == r1["world"] == 2
    assert [w[0] for w in r0["windows"]] == [w[0] for w in r1["windows"]] == [0, 1]
    assert r0["windows"] != r1["windows"], "each rank must draw its own batches"
    assert single_run["world"] == 1 and single_run["windows"] == r0["windows"]  # the same data as rank 0
    assert r0["init"] == r1["init"] == single_run["init"]
    assert r0["final"] == r1["final"], "ranks trained apart: the model is not synchronised (no DDP?)"
    assert r0["final"] != r0["init"], "no update reached the weights"
    assert r0["final"] != single_run["final"], "rank 1's gradients never reached rank 0"
    assert _checkpoint_digest(out / "checkpoints" / "step_000002") == r0["final"]  # the checkpoint holds it


def test_one_writer_under_torchrun(ddp_run):
    out, _ = ddp_run
    with (out / "scalars.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1.0", "2.0"]  # rank 0 alone writes: no duplicated rows
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step_000002"]
    assert not (out / ".fx-lock").exists()  # rank 0's run lock is released at the end
