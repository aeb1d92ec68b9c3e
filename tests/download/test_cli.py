"""`fx download` from the command line: both forms parse, results on stdout, failures exit 1, Ctrl-C is safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from dlhelpers import payload, sha, write_csv
from faultserver import Route

from faceexpr_cli.cli.app import main

KB = 1024
MB = 1 << 20


def test_help_lists_both_forms(capsys):
    assert main(["download", "--help"]) == 0
    out = capsys.readouterr().out
    assert "fetch" in out and "weights" in out and "MANIFEST" in out
    assert main(["download", "weights", "--help"]) == 0
    assert "--list" in capsys.readouterr().out


def test_manifest_form_prints_summary_and_fails_with_exit_1(server, tmp_path, capsys):
    data = payload(20 * KB)
    server.add("/a.bin", Route(data=data))
    server.add("/b.bin", Route(data=b"x", statuses=[404]))
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/a.bin")}])
    out = tmp_path / "out"
    assert main(["download", str(manifest), "--out", str(out)]) == 0
    assert "fx download" in capsys.readouterr().out and sha((out / "a.bin").read_bytes()) == sha(data)

    manifest = write_csv(tmp_path / "m2.csv", [{"url": server.url("/a.bin")}, {"url": server.url("/b.bin")}])
    assert main(["download", "fetch", str(manifest), "-o", str(out), "--json", "--retries", "0"]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["skipped"] == 1 and summary["failed"] == 1
    assert summary["failures"][0]["error_class"] == "http_404"
    assert "1 of 2 items failed" in captured.err and "fx-download" in captured.err


def test_bad_arguments_exit_2(tmp_path, capsys):
    manifest = tmp_path / "m.txt"
    manifest.write_text("https://127.0.0.1:9/x\n")
    assert main(["download", str(manifest), "--out", str(tmp_path / "o"), "--shard", "4/4"]) == 2
    assert "bad shard" in capsys.readouterr().err
    assert main(["download", str(manifest), "--out", str(tmp_path / "o"), "--source", "ftp"]) == 2
    assert "unknown download source 'ftp'" in capsys.readouterr().err
    assert main(["download", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.sigint_timing
def test_ctrl_c_keeps_the_part_and_a_rerun_resumes(server, tmp_path):
    data = payload(8 * MB, seed=9)
    route = Route(data=data, chunk_delay=0.01)  # ~6 MB/s: slow enough to interrupt halfway
    server.add("/slow.bin", route)
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/slow.bin"), "sha256": sha(data)}])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "faceexpr_cli", "-q", "download", str(manifest), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    part = out / "slow.bin.part"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 2 * MB):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    have = part.stat().st_size
    assert 2 * MB < have < len(data) and not (out / "slow.bin").exists()
    journal = [json.loads(line) for line in (out / "fx-download.jsonl").read_text().splitlines()]
    assert journal[-1]["error_class"] == "interrupted"

    route.chunk_delay = 0.0
    assert main(["download", str(manifest), "--out", str(out)]) == 0
    assert sha((out / "slow.bin").read_bytes()) == sha(data)
    assert server.hits_for("/slow.bin")[-1].range == f"bytes={have}-"
    assert not part.exists()


def test_one_run_per_destination_and_out_that_is_a_file(server, tmp_path, capsys):
    from faceexpr_cli.runlock import output_lock

    server.add("/a.bin", Route(data=payload(KB)))
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/a.bin")}])
    out = tmp_path / "out"
    out.mkdir()
    journal = out / "fx-download.jsonl"
    journal.write_text('{"key": "earlier", "status": "ok"}\n')
    with output_lock(out, "fx download"):  # another run holds DEST
        assert main(["download", str(manifest), "--out", str(out)]) == 1
        err = capsys.readouterr().err
    assert "in use by fx download" in err and f"pid {os.getpid()}" in err and len(err.strip().splitlines()) == 1
    assert journal.read_text() == '{"key": "earlier", "status": "ok"}\n'  # the other run's rows untouched
    assert not (out / "fx-download.parquet").exists() and server.hits_for("/a.bin") == []
    assert main(["download", str(manifest), "--out", str(out)]) == 0  # free again: this run goes ahead
    capsys.readouterr()

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for dest in (blocker, blocker / "sub"):
        assert main(["download", str(manifest), "--out", str(dest)]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and "file" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.sigint_timing
def test_ctrl_c_with_workers_stops_promptly_and_leaves_a_true_record(server, tmp_path):
    """SIGINT while items stream slowly, one server never answers and others wait in the queue: exit 130 in a
    few seconds, one line, finished rows kept, nothing incomplete under a final name."""
    quick = {f"/q{i}.bin": payload(10 * KB, seed=i) for i in range(2)}
    slow = {"/slow.bin": payload(8 * MB, seed=5), **{f"/later{i}.bin": payload(4 * MB, seed=10 + i) for i in range(6)}}
    for path, data in {**quick, **slow}.items():
        server.add(path, Route(data=data, chunk_delay=0.0 if path in quick else 0.05))
    server.add("/silent.bin", Route(data=b"never", delay=60))  # headers never come within the test
    paths = [*quick, "/slow.bin", "/silent.bin", *(p for p in slow if p != "/slow.bin")]
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url(p)} for p in paths])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "faceexpr_cli", "-q", "download", str(manifest), "--out", str(out),
                             "--jobs", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    journal = out / "fx-download.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
            journal.exists() and journal.read_text().count('"ok"') >= 2
            and (out / "slow.bin.part").exists() and (out / "slow.bin.part").stat().st_size > 256 * KB):
        time.sleep(0.02)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    took = time.monotonic() - t0
    err = err.decode()
    assert proc.returncode == 130 and took < 5.0, (proc.returncode, took, err)
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if "interrupted" in ln]) == 1, err

    rows = {}
    for line in journal.read_text().splitlines():
        rec = json.loads(line)
        rows[rec["url"].rsplit("/", 1)[1]] = rec
    assert rows["q0.bin"]["status"] == rows["q1.bin"]["status"] == "ok"
    assert rows["slow.bin"]["error_class"] == rows["silent.bin"]["error_class"] == "interrupted"
    assert len(rows) < len(paths)  # queued items never started, so they have no row
    everything = {**quick, **slow}
    for f in out.iterdir():  # a final name only ever holds the server's complete file
        if f.suffix == ".bin":
            assert sha(f.read_bytes()) == sha(everything["/" + f.name]), f.name
    assert not (out / "slow.bin").exists() and not (out / "silent.bin").exists()
    part = (out / "slow.bin.part").read_bytes()  # kept for resume, with its validator, a true prefix
    assert part == everything["/slow.bin"][: len(part)] and (out / "slow.bin.part.validator").exists()
