"""Ctrl-C: fx crop stops within seconds, keeps the rows of finished videos, leaves no clip its manifest does not
describe, and a re-run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mediacheck import decode_video_times

from faceexpr_cli.cli.app import main
from faceexpr_cli.crop import read_manifest


def _final_clips(out: Path) -> list[Path]:
    return sorted(p for p in (out / "clips").rglob("*.mp4") if not p.name.startswith("."))


def _check_folder(out: Path, n_inputs: int) -> int:
    """Every clip under a final name decodes with the frames of its row; no temporary file is left."""
    df = read_manifest(out / "manifest.parquet")
    rows = {r["clip"]: r for _, r in df.iterrows() if r["status"] == "ok"}
    names = [p.relative_to(out).as_posix() for p in _final_clips(out)]
    assert sorted(names) == sorted(rows), "clips on disk and ok rows differ"
    for name, row in rows.items():
        frames, _ = decode_video_times(out / name)
        assert frames == row["n_frames"] > 0, name
    assert not [p for p in out.rglob("*.part")]
    finished = df["source"].nunique()
    assert finished < n_inputs, "the run finished before the interrupt: the test proves nothing"
    return finished


@pytest.fixture(scope="module")
def with_long_video(small_videos, tmp_path_factory):
    """A long video (first in order, so one worker is in its middle when the other's first clip appears) and
    three short ones: a run that lets running videos finish takes many seconds to stop."""
    import shutil

    from faceexpr_cli.samples import make_talking_head

    d = tmp_path_factory.mktemp("with_long")
    make_talking_head(d / "a_long.mp4", seconds=16.0, seed=9, width=240, height=192)
    for i in range(3):
        shutil.copy(small_videos / f"v{i}.mp4", d / f"v{i}.mp4")
    return d


@pytest.mark.sigint_timing
@pytest.mark.parametrize("workers", [2, 1])
def test_ctrl_c_stops_quickly_and_a_rerun_resumes(small_videos, with_long_video, tmp_path, capsys, workers):
    out = tmp_path / "out"
    inputs = with_long_video if workers > 1 else small_videos
    # --stride 1 makes each video slow enough that Ctrl-C lands in the middle of the run
    args = ["crop", str(inputs), "--out", str(out), "--size", "64", "--no-embed", "--stride", "1",
            "--workers", str(workers)]
    proc = subprocess.Popen([sys.executable, "-m", "faceexpr_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
                            start_new_session=True)
    t0 = time.monotonic()
    while not _final_clips(out) and proc.poll() is None and time.monotonic() - t0 < 60:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the parent and its workers
    sent = time.monotonic()
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    # a run that lets the long video finish, or waits for its worker's grace period (5 s), takes longer
    assert took < 4.0, f"exit {took:.1f} s after Ctrl-C"
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if "interrupted" in ln] == ["interrupted"] == err.strip().splitlines()[-1:]
    finished = _check_folder(out, 4)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["interrupted"] is True
    # the re-run skips what finished and does the rest
    code = main([*args, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["resumed_skipped"] == finished and result["clips"] == 4
    df = read_manifest(out / "manifest.parquet")
    assert len(df) == 4 and (df["status"] == "ok").all()
    for _, row in df.iterrows():
        assert decode_video_times(out / row["clip"])[0] == row["n_frames"]


def test_interrupt_between_a_clip_and_its_row_removes_the_clip(small_videos, tmp_path, monkeypatch):
    """Ctrl-C after a video's clip is written but before its row: no clip without a row is left."""
    from faceexpr_cli.crop import CropOptions, crop_videos
    from faceexpr_cli.crop import process as pr
    from faceexpr_cli.crop.run import CropInterrupted

    calls = []
    real = pr.mf.write_part

    def write_part(out, source_id, rows):
        calls.append(source_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(out, source_id, rows)

    monkeypatch.setattr(pr.mf, "write_part", write_part)
    out = tmp_path / "out"
    with pytest.raises(CropInterrupted) as exc:
        crop_videos([small_videos / "v0.mp4", small_videos / "v1.mp4", small_videos / "v2.mp4"], out,
                    CropOptions(size=64, embed=False))
    assert exc.value.result.stats["unfinished"] == 2
    assert len(_final_clips(out)) == 1
    assert _check_folder(out, 3) == 1
