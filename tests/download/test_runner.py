"""Whole runs: a mixed manifest, re-runs that skip, shards, the per-host limit and the bandwidth cap."""

from __future__ import annotations

import time

import pandas as pd
from dlhelpers import fast_options, leftovers, payload, read_status, sha, write_csv
from faultserver import Route

from faceexpr_cli.download.runner import download_manifest

KB = 1024


def test_mixed_manifest_ends_verified_recorded_and_clean(server, tmp_path):
    """Done-when: good, transient-failing and permanent-failing rows in one manifest."""
    good = {f"/good{i}.bin": payload(300 * KB, seed=i) for i in range(3)}
    transient = {
        "/t503.bin": (payload(200 * KB, seed=10), {"statuses": [503, 503]}),
        "/t429.bin": (payload(200 * KB, seed=11), {"statuses": [429], "retry_after": "1"}),
        "/tdrop.bin": (payload(900 * KB, seed=12), {"drop_after": 300 * KB, "drops": 2}),
        "/tlie.bin": (payload(200 * KB, seed=13), {"length_delta": 50, "lies": 1}),
    }
    bad_copy = payload(100 * KB, seed=20)
    rows = []
    for path, data in good.items():
        server.add(path, Route(data=data))
        rows.append({"url": server.url(path), "sha256": sha(data), "speaker": path[1:5]})
    for path, (data, faults) in transient.items():
        server.add(path, Route(data=data, **faults))
        rows.append({"url": server.url(path), "sha256": sha(data), "speaker": "t"})
    server.add("/p404.bin", Route(data=b"x", statuses=[404]))
    server.add("/p403.bin", Route(data=b"x", statuses=[403]))
    server.add("/pbad.bin", Route(data=bad_copy))
    rows += [{"url": server.url("/p404.bin")}, {"url": server.url("/p403.bin")},
             {"url": server.url("/pbad.bin"), "sha256": "0" * 64}, {"url": server.url("/pbad.bin") + "?x", "sha256": "zz"}]
    manifest = write_csv(tmp_path / "m.csv", rows)
    out = tmp_path / "out"

    result = download_manifest(manifest, out, fast_options(jobs=4), progress=False)

    assert result.count("ok") == 7 and result.count("failed") == 4
    for path, data in list(good.items()) + [(p, d) for p, (d, _) in transient.items()]:
        assert sha((out / path[1:]).read_bytes()) == sha(data)
    status = read_status(out)
    failures = {r["url"].rsplit("/", 1)[1]: r for r in status.values() if r["status"] == "failed"}
    assert {k: v["error_class"] for k, v in failures.items()} == {
        "p404.bin": "http_404", "p403.bin": "http_403", "pbad.bin": "checksum_mismatch", "pbad.bin?x": "bad_row"}
    assert all(v["error"] and v["attempts"] <= 1 for v in failures.values())
    assert status[server.url("/tdrop.bin")]["attempts"] == 3 and status[server.url("/t503.bin")]["attempts"] == 3
    assert status[server.url("/good0.bin")]["speaker"] == "good"  # metadata columns are carried
    assert leftovers(out) == []
    assert not (out / "p404.bin").exists() and not (out / "pbad.bin").exists()
    table = pd.read_parquet(out / "fx-download.parquet")
    assert {"key", "status", "error_class", "error", "bytes", "seconds", "attempts", "sha256"} <= set(table.columns)


def test_rerun_skips_done_items_and_refetches_missing_ones(server, tmp_path):
    data = {f"/f{i}.bin": payload(50 * KB, seed=i) for i in range(4)}
    for path, body in data.items():
        server.add(path, Route(data=body))
    server.add("/flaky.bin", Route(data=b"late", statuses=[503] * 3))
    rows = [{"url": server.url(p)} for p in [*data, "/flaky.bin"]]
    manifest = write_csv(tmp_path / "m.csv", rows)
    out = tmp_path / "out"
    first = download_manifest(manifest, out, fast_options(attempts=2), progress=False)
    assert first.count("ok") == 4 and first.failed[0]["error_class"] == "http_503"
    (out / "f0.bin").unlink()
    hits_before = len(server.hits)
    second = download_manifest(manifest, out, fast_options(attempts=2), progress=False)
    assert [r["status"] for r in second.records] == ["ok", "skipped", "skipped", "skipped", "ok"]
    assert sorted(h.path for h in server.hits[hits_before:]) == ["/f0.bin", "/flaky.bin", "/flaky.bin"]
    table = pd.read_parquet(out / "fx-download.parquet")
    assert sorted(table["status"]) == ["ok", "ok", "skipped", "skipped", "skipped"]

    # without any status files, files already at their final names still count as done
    for name in ("fx-download.jsonl", "fx-download.parquet"):
        (out / name).unlink()
    hits_before = len(server.hits)
    third = download_manifest(manifest, out, fast_options(), progress=False)
    assert [r["status"] for r in third.records] == ["skipped"] * 5 and len(server.hits) == hits_before


def test_shards_split_one_manifest_between_machines(server, tmp_path):
    rows = []
    for i in range(12):
        server.add(f"/s{i}.bin", Route(data=payload(KB, seed=i)))
        rows.append({"url": server.url(f"/s{i}.bin"), "id": f"s{i}"})  # ids: shards do not depend on the port
    manifest = write_csv(tmp_path / "m.csv", rows)
    out = tmp_path / "out"
    counts = [len(download_manifest(manifest, out, fast_options(shard=(i, 3)), progress=False).records) for i in range(3)]
    assert counts == [4, 5, 3]
    assert sorted(p.name for p in out.glob("s*.bin")) == sorted(f"s{i}.bin" for i in range(12))
    assert len(list(out.glob("fx-download.shard-*-of-00003.parquet"))) == 3
    assert sum(h.status == 200 for h in server.hits) == 12  # every file fetched exactly once


def test_per_host_limit_and_bandwidth_cap(server, tmp_path):
    rows = []
    for i in range(6):
        server.add(f"/h{i}.bin", Route(data=payload(256 * KB, seed=i), chunk_delay=0.02))
        rows.append({"url": server.url(f"/h{i}.bin")})
    manifest = write_csv(tmp_path / "m.csv", rows)
    result = download_manifest(manifest, tmp_path / "a", fast_options(jobs=6, per_host=2), progress=False)
    assert result.count("ok") == 6 and server.max_active == 2

    server.add("/capped.bin", Route(data=payload(2048 * KB)))
    manifest = write_csv(tmp_path / "c.csv", [{"url": server.url("/capped.bin")}])
    t0 = time.monotonic()
    result = download_manifest(manifest, tmp_path / "b", fast_options(rate_limit=4096 * KB), progress=False)
    # 2 MB at 4 MB/s with a quarter-second burst allowance: at least 0.25 s
    assert result.count("ok") == 1 and time.monotonic() - t0 >= 0.24
