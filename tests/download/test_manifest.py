"""Manifest readers: every format gives the same Items; bad rows become failed items, not a dead run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from faceexpr_cli.download.items import make_unique, parse_spans, shard_of
from faceexpr_cli.download.manifest import read_manifest
from faceexpr_cli.download.options import parse_shard, parse_size, parse_storage_options
from faceexpr_cli.errors import DataError, MissingFileError, UsageError

SHA = "ab" * 32
ROWS = [
    {"url": "https://example.org/media/talk%201.mp4", "id": "talk1", "size": 1234, "sha256": SHA,
     "spans": "1.5-3;00:10-00:12.5", "speaker": "ann"},
    {"url": "https://example.org/media/b.wav", "id": None, "size": None, "sha256": None, "spans": None,
     "speaker": "bob"},
]


def _check(items):
    assert [it.name for it in items] == ["talk1.mp4", "b.wav"]
    first = items[0]
    assert first.key == "talk1" and first.size == 1234 and first.sha256 == SHA
    assert first.spans == [(1.5, 3.0), (10.0, 12.5)]
    assert first.meta == {"speaker": "ann"}
    assert items[1].key == ROWS[1]["url"] and items[1].meta == {"speaker": "bob"} and items[1].problem is None


def test_csv_parquet_jsonl_agree(tmp_path):
    frame = pd.DataFrame(ROWS)
    frame.to_csv(tmp_path / "m.csv", index=False)
    frame.to_parquet(tmp_path / "m.parquet", index=False)
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    for name in ("m.csv", "m.parquet", "m.jsonl"):
        _check(read_manifest(tmp_path / name))
    (tmp_path / "m.tsv").write_text(frame.to_csv(sep="\t", index=False))
    _check(read_manifest(tmp_path / "m.tsv"))


def test_text_manifest_with_urls_ids_paths_and_comments(tmp_path):
    local = tmp_path / "clip.mp4"
    local.write_bytes(b"x")
    (tmp_path / "list.txt").write_text(
        "# sources\n\nhttps://host/a.bin\ndQw4w9WgXcQ\nclip.mp4\ns3://bucket/key/v.mp4\nhttps://host/a.bin\n"
    )
    items = read_manifest(tmp_path / "list.txt", id_url="https://videos.example/watch?v={id}")
    assert [it.url for it in items] == ["https://host/a.bin", "https://videos.example/watch?v=dQw4w9WgXcQ",
                                        str(local), "s3://bucket/key/v.mp4"]  # the duplicate line is dropped
    assert [it.name for it in items] == ["a.bin", "dQw4w9WgXcQ", "clip.mp4", "v.mp4"]
    assert items[1].key == "dQw4w9WgXcQ"


def test_bad_rows_are_recorded_not_fatal(tmp_path):
    rows = [{"url": "https://h/a.bin", "sha256": "nothex"}, {"url": "https://h/b.bin", "spans": "5-2"},
            {"url": "https://h/c.bin", "start": "1", "end": "2.5"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    items = read_manifest(tmp_path / "m.jsonl")
    assert "sha256" in items[0].problem and "row 1" in items[0].problem
    assert "empty or negative" in items[1].problem
    assert items[2].problem is None and items[2].spans == [(1.0, 2.5)]


def test_unusable_manifests_say_why(tmp_path):
    pd.DataFrame([{"foo": 1, "bar": 2}]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataError, match="no URL or id column.*foo, bar"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "bad.jsonl").write_text('{"url": "x"}\n{oops\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        read_manifest(tmp_path / "bad.jsonl")
    with pytest.raises(MissingFileError):
        read_manifest(tmp_path / "nope.txt")


def test_names_are_unique_and_shards_partition():
    from faceexpr_cli.download.items import Item

    items = [Item(key=f"https://h{i}/x.mp4", url=f"https://h{i}/x.mp4", name="x.mp4") for i in range(3)]
    make_unique(items)
    assert len({it.name for it in items}) == 3 and all(it.name.endswith(".mp4") for it in items)
    keys = [f"k{i}" for i in range(200)]
    shards = [[k for k in keys if shard_of(k, 4) == s] for s in range(4)]
    assert sorted(sum(shards, [])) == sorted(keys) and all(20 < len(s) < 80 for s in shards)


def test_option_parsers():
    assert parse_size("10M") == 10 << 20 and parse_size("1.5k") == 1536 and parse_size("512") == 512
    assert parse_shard("3/8") == (3, 8)
    with pytest.raises(UsageError, match="bad shard") as info:
        parse_shard("8/8")
    assert "0 <= I < N" in info.value.one_line()
    assert parse_storage_options(["s3.endpoint_url=http://127.0.0.1:9", "s3.anon=true"]) == {
        "s3": {"endpoint_url": "http://127.0.0.1:9", "anon": True}}
    assert parse_spans([[0, 1], {"start": 2, "end": 3}]) == [(0.0, 1.0), (2.0, 3.0)]
