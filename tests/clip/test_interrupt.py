"""Ctrl-C during `fx clip`: exit 130 with one "interrupted" line, every file under a final name decodes, and a
re-run finishes the dataset."""

from __future__ import annotations

import signal
import subprocess
import sys
import tarfile
import time

import pyarrow.parquet as pq
import pytest

from faceexpr_cli.clip.synthetic import read_code
from faceexpr_cli.dataset import ClipDataset


def _fx(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "faceexpr_cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.sigint_timing
def test_ctrl_c_exits_130_and_leaves_only_whole_files(long_talk, tmp_path):
    out = tmp_path / "out"
    args = ("-q", "clip", long_talk.path, "--random", "40", "--post", "0.2", "--shard-count", "3", "-o", out)
    run = _fx(*args)
    deadline = time.time() + 60
    while not list(out.glob("clips-*.tar")) and run.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert run.poll() is None, "the run ended before it could be interrupted"
    sent = time.time()
    run.send_signal(signal.SIGINT)
    stdout, err = run.communicate(timeout=30)
    assert run.returncode == 130 and time.time() - sent < 5
    assert "Traceback" not in err and len(lines := [line for line in err.splitlines() if line.strip()]) == 1
    assert lines[0].startswith("interrupted (finished clips are kept in")  # an interrupt is not an "error:"
    assert not list(out.glob(".*.part")) and not (out / ".fx-lock").exists()
    shards = sorted(out.glob("clips-*.tar"))
    assert shards and len(shards) < 14  # interrupted before the last of 14 shards
    for shard in shards:  # each final tar is whole, has its index part, and every clip in it decodes
        assert shard.with_suffix(".parquet").exists()
        with tarfile.open(shard) as tar:
            names = tar.getnames()
        assert len(names) % 2 == 0
    kept = list(ClipDataset(out, audio=False, on_error="raise"))
    for s in kept:
        codes = [read_code(f.numpy()) for f in s["frames"]]
        assert codes == list(range(codes[0], codes[0] + 5))
    # the re-run resumes: the 40 clips, none twice
    rerun = _fx(*args)
    stdout, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    keys = [s["key"] for s in ClipDataset(out, audio=False, on_error="raise")]
    assert len(keys) == len(set(keys)) == 40 and {s["key"] for s in kept} <= set(keys)
    ok = [r for r in pq.read_table(out / "index.parquet").to_pylist() if r["status"] == "ok"]
    assert sorted(r["key"] for r in ok) == sorted(keys)
