"""URLs from manifests: secrets never written or printed, only allowed schemes fetched, mangled fields refused."""

from __future__ import annotations

import base64
import logging

import pandas as pd
from dlhelpers import fast_options, payload, sha
from faultserver import Route

from faceexpr_cli.cli.app import main
from faceexpr_cli.download.manifest import read_manifest
from faceexpr_cli.download.runner import download_manifest

KB = 1024
SECRETS = ["PW-s3cr3t-1", "SIG0123456789abc", "TOK987654321", "PW-closed-2", "PW-ftp-3", "SIGxyz12345"]


def _everything_written(out, captured, caplog) -> str:
    """Every byte fx wrote or printed: files (Parquet decoded too), stdout, stderr and log records."""
    texts = [captured.out, captured.err, *(r.getMessage() for r in caplog.records)]
    for path in out.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    texts.append(pd.read_parquet(out / "fx-download.parquet").to_json())
    return "\n".join(texts)


def test_url_passwords_and_signatures_never_reach_output(server, tmp_path, capsys, caplog):
    data = payload(20 * KB, seed=1)
    server.add("/a.bin", Route(data=data))
    host = server.base.removeprefix("http://")
    urls = [f"http://alice:PW-s3cr3t-1@{host}/a.bin?X-Amz-Signature=SIG0123456789abc&token=TOK987654321&v=2",
            f"http://alice:PW-s3cr3t-1@{host}/gone.bin?sig=SIGxyz12345",  # 404
            "http://bob:PW-closed-2@127.0.0.1:1/x.bin",  # connection refused
            "ftp://carol:PW-ftp-3@files.example/y.bin"]  # refused scheme
    manifest = tmp_path / "m.txt"
    manifest.write_text("\n".join(urls) + "\n")
    out = tmp_path / "out"
    caplog.set_level(logging.DEBUG, logger="fx")
    assert main(["-vv", "download", str(manifest), "--out", str(out), "--retries", "1"]) == 1
    first = capsys.readouterr()
    assert main(["-vv", "download", str(manifest), "--out", str(out), "--retries", "0", "--json"]) == 1
    second = capsys.readouterr()

    # the real URL was used for fetching: the file arrived, the password as Basic auth, the signature as query
    assert sha((out / "a.bin").read_bytes()) == sha(data)
    hit = server.hits_for("/a.bin")[0]
    assert base64.b64decode(hit.auth.split()[1]).decode() == "alice:PW-s3cr3t-1"
    assert "SIG0123456789abc" in hit.query
    for captured in (first, second):
        text = _everything_written(out, captured, caplog)
        assert "alice:***@" in text and "127.0.0.1:1" in text  # redacted, not dropped
        leaked = [s for s in SECRETS if s in text]
        assert leaked == [], leaked


def test_only_allowed_schemes_are_fetched(tmp_path, monkeypatch):
    from faceexpr_cli.download.fetcher import Fetcher

    local = tmp_path / "clip.bin"
    local.write_bytes(b"local bytes")
    lines = ["ftp://h.example/a.bin", "zip://inner::/tmp/x.zip", "memory://a/b.bin", "data:text/plain,hello",
             "javascript:alert(1)", "sftp://h.example/c.bin", "http:///nohost.bin", f"file://{local}"]
    (tmp_path / "m.txt").write_text("\n".join(lines) + "\n")
    items = read_manifest(tmp_path / "m.txt")
    assert [it.problem_kind if it.problem else None for it in items] == ["bad_url"] * 7 + [None]

    used = []
    real = Fetcher.source
    monkeypatch.setattr(Fetcher, "source", lambda self, name: used.append(name) or real(self, name))
    result = download_manifest(tmp_path / "m.txt", tmp_path / "out", fast_options(), progress=False)
    assert [r["error_class"] for r in result.records] == ["bad_url"] * 7 + [None]
    assert all(r["attempts"] == 0 for r in result.records[:7]) and used == ["fsspec"]  # only the file:// row
    assert (tmp_path / "out" / "clip.bin").read_bytes() == b"local bytes"


def test_bare_values_and_mangled_fields_are_bad_rows_not_fetches(tmp_path, monkeypatch):
    from faceexpr_cli.download.fetcher import Fetcher

    # an unclosed quote swallows the rest of the file into one field; a shifted row puts a name in the url column
    (tmp_path / "m.csv").write_text('url,speaker\nann,https://h.example/shifted.bin\n12345,bob\n'
                                    'dQw4w9WgXcQ,carl\n"https://h.example/b.bin,dan\nx,y\n')
    items = read_manifest(tmp_path / "m.csv")
    assert [(it.problem_kind if it.problem else it.url) for it in items] == [
        "bad_row", "bad_row", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "bad_row"]
    assert items[2].name == "dQw4w9WgXcQ"

    used = []
    monkeypatch.setattr(Fetcher, "source", lambda self, name: used.append(name))
    (tmp_path / "bad.csv").write_text('url\nann\n12345\n"https://h.example/b.bin\nx\n')
    result = download_manifest(tmp_path / "bad.csv", tmp_path / "out", fast_options(), progress=False)
    assert [r["error_class"] for r in result.records] == ["bad_row"] * 3 and used == []


def test_permanent_failures_do_not_ask_for_a_rerun(server, tmp_path, capsys):
    server.add("/gone.bin", Route(data=b"x", statuses=[404]))
    server.add("/busy.bin", Route(data=b"x", statuses=[503]))
    manifest = tmp_path / "m.txt"
    manifest.write_text(f"{server.url('/gone.bin')}\nftp://h.example/a.bin\nnot-an-id\n")
    assert main(["download", str(manifest), "--out", str(tmp_path / "o1"), "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert "3 of 3 items failed" in err and "re-run" not in err and "failed for good" in err

    manifest.write_text(f"{server.url('/busy.bin')}\n")
    assert main(["download", str(manifest), "--out", str(tmp_path / "o2"), "--retries", "0"]) == 1
    assert "re-run the same command to retry the 1 item" in capsys.readouterr().err
