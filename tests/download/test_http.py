"""The HTTP source against a loopback server that drops, lies, stalls, redirects and refuses ranges."""

from __future__ import annotations

import hashlib
import time

from dlhelpers import fast_options, leftovers, payload, sha, write_csv
from faultserver import Route

from faceexpr_cli.download import resume
from faceexpr_cli.download.runner import download_manifest

MB = 1 << 20


def _one(server, tmp_path, path, data, route_kw=None, row_kw=None, **opt_kw):
    server.add(path, Route(data=data, **(route_kw or {})))
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url(path), **(row_kw or {})}])
    result = download_manifest(manifest, tmp_path / "out", fast_options(**opt_kw), progress=False)
    return result.records[0]


def test_killed_halfway_then_rerun_transfers_only_the_rest(server, tmp_path):
    """Done-when: a download cut at 10 of 24 MB leaves only its .part; the re-run asks for the rest and verifies."""
    data = payload(24 * MB)
    server.add("/big.bin", Route(data=data, drop_after=10 * MB, drops=1))
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/big.bin"), "sha256": sha(data)}])
    out = tmp_path / "out"
    first = download_manifest(manifest, out, fast_options(attempts=1), progress=False).records[0]
    assert first["status"] == "failed" and first["error_class"] == "truncated"
    assert not (out / "big.bin").exists()
    assert (out / "big.bin.part").stat().st_size == 10 * MB

    second = download_manifest(manifest, out, fast_options(), progress=False).records[0]
    assert second["status"] == "ok" and second["resumed_from"] == 10 * MB
    assert sha((out / "big.bin").read_bytes()) == sha(data) == second["sha256"]
    hits = server.hits_for("/big.bin")
    assert [h.range for h in hits] == [None, f"bytes={10 * MB}-"]
    assert server.sent("/big.bin") == len(data)  # not one byte fetched twice
    assert second["transferred"] == 14 * MB and leftovers(out) == []


def test_5xx_and_429_are_retried_with_backoff_and_retry_after(server, tmp_path):
    data = payload(5000)
    rec = _one(server, tmp_path, "/flaky.bin", data, {"statuses": [503, 500, 502]})
    assert rec["status"] == "ok" and rec["attempts"] == 4 and rec["sha256"] == sha(data)

    server.add("/busy.bin", Route(data=data, statuses=[429], retry_after="3"))
    manifest = write_csv(tmp_path / "m2.csv", [{"url": server.url("/busy.bin")}])
    t0 = time.monotonic()
    rec = download_manifest(manifest, tmp_path / "out", fast_options(scale=0.1), progress=False).records[0]
    assert rec["status"] == "ok" and rec["attempts"] == 2
    assert time.monotonic() - t0 >= 0.3  # Retry-After 3 s, scaled by 0.1


def test_retry_after_beyond_the_limit_gives_up_now(server, tmp_path):
    rec = _one(server, tmp_path, "/later.bin", b"x", {"statuses": [503] * 5, "retry_after": "86400"})
    assert rec["status"] == "failed" and rec["attempts"] == 1 and rec["error_class"] == "http_503"
    assert "retry after 86400" in rec["error"]


def test_permanent_statuses_are_not_retried_and_leave_nothing(server, tmp_path):
    for status in (404, 403):
        rec = _one(server, tmp_path, f"/p{status}.bin", b"x", {"statuses": [status]})
        assert rec["status"] == "failed" and rec["error_class"] == f"http_{status}" and rec["attempts"] == 1
    assert leftovers(tmp_path / "out") == []


def test_content_length_longer_than_body_is_resumed(server, tmp_path):
    data = payload(3 * MB, seed=1)
    rec = _one(server, tmp_path, "/lie.bin", data, {"length_delta": 4096, "lies": 1}, {"sha256": sha(data)})
    assert rec["status"] == "ok" and rec["attempts"] == 2 and rec["resumed_from"] == 3 * MB
    assert server.hits_for("/lie.bin")[1].range == f"bytes={3 * MB}-"


def test_content_length_shorter_than_body_fails_the_checksum(server, tmp_path):
    data = payload(MB, seed=2)
    rec = _one(server, tmp_path, "/short.bin", data, {"length_delta": -1000, "lies": 5}, {"sha256": sha(data)})
    assert rec["status"] == "failed" and rec["error_class"] == "checksum_mismatch" and rec["attempts"] == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fx-download.jsonl", "fx-download.parquet"]


def test_size_mismatch_is_permanent_before_the_body(server, tmp_path):
    rec = _one(server, tmp_path, "/sized.bin", payload(MB), row_kw={"size": 12345})
    assert rec["error_class"] == "size_mismatch" and rec["transferred"] == 0 and "expected 12345" in rec["error"]


def test_redirect_then_resume_through_the_redirect(server, tmp_path):
    data = payload(2 * MB, seed=3)
    server.add("/new.bin", Route(data=data, drop_after=MB, drops=1))
    rec = _one(server, tmp_path, "/old.bin", b"", {"redirect": server.url("/new.bin")}, {"sha256": sha(data)})
    assert rec["status"] == "ok" and rec["final_url"].endswith("/new.bin") and rec["name"] == "old.bin"
    assert [h.range for h in server.hits_for("/new.bin")] == [None, f"bytes={MB}-"]


def test_server_without_ranges_restarts_from_zero(server, tmp_path):
    data = payload(2 * MB, seed=4)
    rec = _one(server, tmp_path, "/norange.bin", data, {"ranges": False, "drop_after": MB, "drops": 1},
               {"sha256": sha(data)})
    assert rec["status"] == "ok" and rec["resumed_from"] == 0 and rec["attempts"] == 2
    assert server.sent("/norange.bin") == MB + len(data)


def test_stalled_transfer_times_out_and_slow_one_finishes(server, tmp_path):
    rec = _one(server, tmp_path, "/stall.bin", payload(256 * 1024), {"chunk_delay": 0.6}, attempts=2, timeout=0.2,
               chunk=32 * 1024)
    assert rec["status"] == "failed" and rec["error_class"] == "timeout" and rec["attempts"] == 2
    # what arrived before the stall (whole receive chunks) is kept for a later resume
    assert (tmp_path / "out" / "stall.bin.part").stat().st_size >= 64 * 1024

    data = payload(256 * 1024, seed=5)
    rec = _one(server, tmp_path, "/slow.bin", data, {"chunk_delay": 0.05}, timeout=2.0)
    assert rec["status"] == "ok" and rec["sha256"] == sha(data)


def _ours(server, part, path, route):
    """The sidecar fx writes next to a .part it receives from ``path`` (as an earlier run would have left it)."""
    resume.write(part, resume.Validator(resume.url_digest(server.url(path)), route.current_etag(),
                                        route.last_modified(), route.size()))


def test_complete_part_from_a_crashed_run_is_verified_not_refetched(server, tmp_path):
    data = payload(MB, seed=6)
    out = tmp_path / "out"
    out.mkdir()
    (out / "done.bin.part").write_bytes(data)  # a run that died between the last byte and the rename
    _ours(server, out / "done.bin.part", "/done.bin", Route(data=data))
    rec = _one(server, tmp_path, "/done.bin", data, row_kw={"sha256": sha(data)})
    assert rec["status"] == "ok" and rec["transferred"] == 0 and server.sent("/done.bin") == 0
    assert [h.status for h in server.hits_for("/done.bin")] == [416]


def test_corrupt_part_is_refetched_once_from_zero(server, tmp_path):
    data = payload(MB, seed=7)
    out = tmp_path / "out"
    out.mkdir()
    (out / "c.bin.part").write_bytes(b"\0" * 1000)  # bytes that are not the file's (a disk error)...
    _ours(server, out / "c.bin.part", "/c.bin", Route(data=data))  # ...under fx's own sidecar
    rec = _one(server, tmp_path, "/c.bin", data, row_kw={"sha256": sha(data)})
    assert rec["status"] == "ok" and rec["sha256"] == sha(data)
    assert [h.range for h in server.hits_for("/c.bin")] == ["bytes=1000-", None]


def test_no_checksum_records_no_hash_but_still_verifies_given_ones(server, tmp_path):
    data = payload(40 * MB // 10, seed=8)
    server.add("/plain.bin", Route(data=data))
    server.add("/given.bin", Route(data=data))
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/plain.bin")},
                                              {"url": server.url("/given.bin"), "sha256": "1" * 64}])
    records = download_manifest(manifest, tmp_path / "out", fast_options(checksum=False), progress=False).records
    assert records[0]["status"] == "ok" and records[0]["sha256"] is None
    assert records[1]["error_class"] == "checksum_mismatch"


def _versions(size=600 * 1024):
    """Two different files of the same length: the .part of one must never be spliced into the other."""
    return payload(size, seed=40), payload(size, seed=41)


def test_foreign_part_without_sidecar_starts_from_zero(server, tmp_path):
    old, new = _versions()
    out = tmp_path / "out"
    out.mkdir()
    (out / "v.bin.part").write_bytes(old[: 200 * 1024])  # another file's prefix, of a plausible length
    rec = _one(server, tmp_path, "/v.bin", new)  # no sha256 in the row: nothing else would catch a splice
    assert rec["status"] == "ok" and rec["resumed_from"] == 0
    assert sha((out / "v.bin").read_bytes()) == sha(new)
    assert [h.range for h in server.hits_for("/v.bin")] == [None] and leftovers(out) == []


def test_file_changed_on_the_server_between_runs_is_fetched_whole(server, tmp_path):
    old, new = _versions()
    for honest in (True, False):  # a server that honours If-Range (200), and one that ignores it (206, new ETag)
        path = f"/changing-{honest}.bin"
        route = Route(data=old, drop_after=200 * 1024, drops=1, if_range=honest)
        server.add(path, route)
        manifest = write_csv(tmp_path / "m.csv", [{"url": server.url(path)}])
        out = tmp_path / f"out-{honest}"
        first = download_manifest(manifest, out, fast_options(attempts=1), progress=False).records[0]
        part = out / f"{path[1:]}.part"
        assert first["error_class"] == "truncated" and part.stat().st_size == 200 * 1024
        route.data = new  # the server's file is replaced by another of the same size
        rec = download_manifest(manifest, out, fast_options(), progress=False).records[0]
        assert rec["status"] == "ok" and rec["resumed_from"] == 0, rec
        assert sha((out / path[1:]).read_bytes()) == sha(new)
        hits = server.hits_for(path)
        assert hits[1].range == f"bytes={200 * 1024}-" and hits[1].if_range == f'"{hashlib.sha1(old).hexdigest()[:16]}"'
        assert leftovers(out) == []
