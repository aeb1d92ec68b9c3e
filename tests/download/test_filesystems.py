"""fsspec sources and destinations: local paths, file:// URLs, and S3 through a moto server on loopback."""

from __future__ import annotations

import os

import pytest
from dlhelpers import fast_options, leftovers, payload, sha, write_csv
from faultserver import Route

from faceexpr_cli.download.runner import download_manifest

KB = 1024


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 and an s3fs filesystem pointed at it."""
    from moto.server import ThreadedMotoServer

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import requests
    import s3fs

    # moto keeps its buckets per process, across servers: start from none (another test file may have run here)
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir("src")
    fs.mkdir("dst")
    try:
        yield fs, {"s3": {"endpoint_url": endpoint}}
    finally:
        moto.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_local_paths_and_file_urls(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    a, b = payload(300 * KB, seed=1), payload(10 * KB, seed=2)
    (src / "a.bin").write_bytes(a)
    (src / "b.bin").write_bytes(b)
    (tmp_path / "list.txt").write_text(f"src/a.bin\nfile://{src / 'b.bin'}\nsrc/missing.bin\n")
    out = tmp_path / "out"
    result = download_manifest(tmp_path / "list.txt", out, fast_options(), progress=False)
    assert [r["status"] for r in result.records] == ["ok", "ok", "failed"]
    assert result.records[2]["error_class"] == "not_found" and result.records[2]["attempts"] == 1
    assert sha((out / "a.bin").read_bytes()) == sha(a) and (out / "b.bin").read_bytes() == b
    assert leftovers(out) == []


def test_missing_driver_and_unknown_protocol_are_recorded(tmp_path, monkeypatch):
    import fsspec.core

    real = fsspec.core.url_to_fs

    def no_gcsfs(url, **kw):
        if url.startswith("gs://"):
            raise ImportError("Install gcsfs to access Google Storage")
        return real(url, **kw)

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_gcsfs)
    (tmp_path / "list.txt").write_text("gs://bucket/a.mp4\nnosuchproto://x/y.bin\n")
    result = download_manifest(tmp_path / "list.txt", tmp_path / "out", fast_options(), progress=False)
    gcs, unknown = result.records
    assert gcs["error_class"] == "dependency" and "faceexpr[gcs]" in gcs["error"] and gcs["attempts"] == 1
    assert unknown["error_class"] == "bad_url" and unknown["attempts"] == 0  # refused before any fetch


def test_local_part_is_resumed_only_with_its_sidecar(tmp_path):
    import fsspec

    from faceexpr_cli.download import resume
    from faceexpr_cli.download.sources.filesystems import validator_of

    data, other = payload(500 * KB, seed=3), payload(500 * KB, seed=30)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    part = out / "big.bin.part"
    manifest = write_csv(tmp_path / "m.csv", [{"url": str(src)}])  # no sha256: nothing would catch a splice

    part.write_bytes(other[: 200 * KB])  # a foreign .part (no sidecar): fetched again from zero
    rec = download_manifest(manifest, out, fast_options(), progress=False).records[0]
    assert rec["status"] == "ok" and rec["resumed_from"] == 0 and sha((out / "big.bin").read_bytes()) == sha(data)

    (out / "big.bin").unlink()
    part.write_bytes(data[: 200 * KB])  # fx's own .part of this very file: continued
    resume.write(part, validator_of(fsspec.filesystem("file").info(str(src)), str(src)))
    rec = download_manifest(manifest, out, fast_options(), progress=False).records[0]
    assert rec["status"] == "ok" and rec["resumed_from"] == 200 * KB and rec["transferred"] == 300 * KB
    assert sha((out / "big.bin").read_bytes()) == sha(data) and leftovers(out) == []


def test_s3_source_and_bucket_destination(s3, server, tmp_path):
    fs, storage = s3
    one, two = payload(200 * KB, seed=4), payload(64 * KB, seed=5)
    fs.pipe("src/videos/one.bin", one)
    server.add("/two.bin", Route(data=two, drop_after=20 * KB, drops=1))
    rows = [{"url": "s3://src/videos/one.bin", "sha256": sha(one)}, {"url": server.url("/two.bin"), "sha256": sha(two)},
            {"url": "s3://src/videos/absent.bin"}]
    manifest = write_csv(tmp_path / "m.csv", rows)
    staging = tmp_path / "staging"
    opts = fast_options(storage_options=storage, staging=staging)
    result = download_manifest(manifest, "s3://dst/raw", opts, progress=False)
    assert [r["status"] for r in result.records] == ["ok", "ok", "failed"]
    assert result.records[2]["error_class"] == "not_found"
    assert result.records[0]["path"] == "s3://dst/raw/one.bin"
    fs.invalidate_cache()
    names = sorted(p.rsplit("/", 1)[1] for p in fs.ls("dst/raw"))
    assert names == ["fx-download.jsonl", "fx-download.parquet", "one.bin", "two.bin"]  # no .part objects
    assert sha(fs.cat("dst/raw/one.bin")) == sha(one) and sha(fs.cat("dst/raw/two.bin")) == sha(two)
    assert not any(p.name.endswith(".part") for p in staging.iterdir())

    # a second machine (empty staging) reads the status from the bucket and skips what is there
    again = download_manifest(manifest, "s3://dst/raw", fast_options(storage_options=storage, staging=tmp_path / "s2"),
                              progress=False)
    assert [r["status"] for r in again.records] == ["skipped", "skipped", "failed"]
