"""crop/manifest.py without video: rows, parts, the resume rule (final status and intact clips), sorting, stats."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq

from faceexpr_cli.crop import manifest as mf


def test_new_row_has_every_column_and_only_the_given_values(tmp_path):
    row = mf.new_row("/a.mp4", "id1", "ok", clip="clips/x.mp4", track_id=3)
    assert list(row) == mf.schema().names and len(row) == 34
    assert (row["source"], row["source_id"], row["status"], row["error"]) == ("/a.mp4", "id1", "ok", None)
    assert row["clip"] == "clips/x.mp4" and row["track_id"] == 3
    assert all(v is None for k, v in row.items() if k not in ("source", "source_id", "status", "clip", "track_id"))
    assert mf.new_row("s", "i", "error", "boom")["error"] == "boom"


def test_statuses_done_and_failed():
    assert set(mf.STATUSES) == {"ok", "dropped", "no_face", "no_clip", "skipped", "error"}
    assert {"ok", "dropped", "no_face", "no_clip", "skipped"} == mf.DONE
    assert {"error"} == mf.FAILED


def test_parts_round_trip_and_paths(tmp_path):
    assert mf.parts_dir(tmp_path) == tmp_path / "manifest" / "parts"
    assert mf.part_path(tmp_path, "abc") == tmp_path / "manifest" / "parts" / "abc.parquet"
    assert mf.read_parts(tmp_path) == []  # no folder yet
    rows = [mf.new_row("/b.mp4", "b", "ok", track_id=1, segment=0, start_time=0.5,
                       crop_boxes=[[1.0, 2.0, 3.0, 4.0]], has_audio=True)]
    assert mf.write_part(tmp_path, "b", rows) == mf.part_path(tmp_path, "b")
    mf.write_part(tmp_path, "a", [mf.new_row("/a.mp4", "a", "no_face")])  # all optional columns empty
    back = mf.read_parts(tmp_path)
    assert [r["source"] for r in back] == ["/a.mp4", "/b.mp4"]  # sorted by part name
    assert back[1]["crop_boxes"] == [[1.0, 2.0, 3.0, 4.0]] and back[1]["start_time"] == 0.5
    assert back[1]["has_audio"] is True and back[0]["track_id"] is None
    mf.remove_part(tmp_path, "b")
    mf.remove_part(tmp_path, "b")  # already gone: no error
    assert [r["source"] for r in mf.read_parts(tmp_path)] == ["/a.mp4"]
    assert sorted(p.name for p in mf.parts_dir(tmp_path).iterdir()) == ["a.parquet"]  # no temporary left


def test_an_unreadable_part_is_removed_and_the_rest_read(tmp_path):
    mf.write_part(tmp_path, "good", [mf.new_row("/g.mp4", "good", "ok")])
    bad = mf.part_path(tmp_path, "bad")
    bad.write_bytes(b"not parquet")
    assert [r["source"] for r in mf.read_parts(tmp_path)] == ["/g.mp4"]
    assert not bad.exists() and mf.part_path(tmp_path, "good").exists()


def _ok_row(out, source, name, size=5, **kw):
    clip = out / "clips" / name
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(b"x" * size)
    return mf.new_row(source, source[-1], "ok", clip=f"clips/{name}", bytes=size, **kw)


def test_done_sources_needs_final_rows_and_intact_clips(tmp_path):
    out = tmp_path
    mf.write_part(out, "a", [_ok_row(out, "/a", "a0.mp4"), _ok_row(out, "/a", "a1.mp4", size=7),
                             mf.new_row("/a", "a", "dropped")])
    mf.write_part(out, "b", [mf.new_row("/b", "b", s) for s in ("no_face", "no_clip", "skipped")])
    mf.write_part(out, "c", [_ok_row(out, "/c", "c0.mp4"), mf.new_row("/c", "c", "error", "boom")])
    mf.write_part(out, "d", [_ok_row(out, "/d", "d0.mp4")])
    mf.write_part(out, "e", [_ok_row(out, "/e", "e0.mp4")])
    mf.write_part(out, "f", [_ok_row(out, "/f", "f0.mp4")])
    mf.write_part(out, "g", [mf.new_row("/g", "g", "ok", bytes=0)])  # an ok row without a clip name
    mf.write_part(out, "h", [mf.new_row("/h", "h", "ok", clip="clips/h0.mp4", bytes=0)])  # clip never written
    (out / "clips" / "d0.mp4").write_bytes(b"xxxxxx")  # changed since it was verified (6 bytes, row says 5)
    (out / "clips" / "e0.mp4").unlink()  # removed
    rows_f = mf.read_parts(out)
    f_row = next(r for r in rows_f if r["source"] == "/f")
    f_row["bytes"] = None
    mf.write_part(out, "f", [f_row])  # a row from before sizes were kept
    done = mf.done_sources(out)
    assert sorted(done) == ["/a", "/b"]
    assert [r["status"] for r in done["/a"]] == ["ok", "ok", "dropped"]
    assert [r["status"] for r in done["/b"]] == ["no_face", "no_clip", "skipped"]


def test_a_clip_folder_with_the_clip_name_is_not_a_clip(tmp_path):
    (tmp_path / "clips" / "x.mp4").mkdir(parents=True)
    mf.write_part(tmp_path, "x", [mf.new_row("/x", "x", "ok", clip="clips/x.mp4", bytes=0)])
    assert mf.done_sources(tmp_path) == {}


def test_write_manifest_sorts_by_source_track_and_segment(tmp_path):
    rows = [mf.new_row("/b", "b", "ok", track_id=0, segment=0),
            mf.new_row("/a", "a", "ok", track_id=2, segment=1),
            mf.new_row("/a", "a", "ok", track_id=2, segment=0),
            mf.new_row("/a", "a", "ok", track_id=0, segment=None),
            mf.new_row("/a", "a", "no_face"),  # no track: first
            mf.new_row("/a", "a", "ok", track_id=1, segment=3)]
    path = mf.write_manifest(tmp_path, rows)
    assert path == tmp_path / "manifest.parquet"
    back = pq.read_table(path).to_pylist()
    assert [(r["source"], r["track_id"], r["segment"]) for r in back] == [
        ("/a", None, None), ("/a", 0, None), ("/a", 1, 3), ("/a", 2, 0), ("/a", 2, 1), ("/b", 0, 0)]
    assert mf.read_manifest(path)["source"].tolist() == ["/a"] * 5 + ["/b"]
    assert pq.read_schema(path).names == mf.schema().names


def test_write_manifest_of_no_rows_is_an_empty_table(tmp_path):
    path = mf.write_manifest(tmp_path, [])
    assert pq.read_table(path).num_rows == 0 and pq.read_schema(path).names == mf.schema().names


def test_write_stats_is_indented_json_with_a_newline(tmp_path):
    from pathlib import Path

    path = mf.write_stats(tmp_path, {"b": 1, "p": Path("/x")})
    assert path == tmp_path / "stats.json"
    text = path.read_text()
    assert text == '{\n  "b": 1,\n  "p": "/x"\n}\n'  # insertion order kept, non-JSON values as text
    assert json.loads(text) == {"b": 1, "p": "/x"}
    assert os.listdir(tmp_path) == ["stats.json"]

