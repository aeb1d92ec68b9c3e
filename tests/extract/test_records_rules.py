"""What `fx extract-feats` writes and how a re-run knows what is done: rows, stems, atomic writes, token tables and
the resume rule, each read back independently (pyarrow, json, numpy) (found by mutation testing)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from faceexpr_cli.extract import records
from faceexpr_cli.extract.inputs import VideoItem

NAMES = ["source", "source_id", "label", "label_id", "status", "error", "json", "npz", "parquet", "fps", "width",
         "height", "frames", "sampled_frames", "face_frames", "no_face_frames", "trajectories", "tokens",
         "token_dim", "backend", "settings", "fields", "seconds"]


def _sha8(text: str, n: int = 12) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


# --- rows ------------------------------------------------------------------------------------------------------------
def test_schema_names_and_types():
    s = records.schema()
    assert s.names == NAMES
    assert s.field("label_id").type == pa.int64() and s.field("width").type == pa.int32()
    assert s.field("fps").type == pa.float64() and s.field("seconds").type == pa.float64()
    assert s.field("token_dim").type == pa.int32() and s.field("trajectories").type == pa.int32()
    assert s.field("status").type == pa.string() and s.field("tokens").type == pa.int64()


def test_new_row_has_every_column_and_the_item_fields_as_json():
    item = VideoItem("/v/a.mp4", label="Sad", fields={"speaker": "s1", "where": Path("/x"), "n": 3})
    row = records.new_row(item, "ok", None, tokens=7, fps=25.0)
    assert list(row) == NAMES
    assert row["source"] == "/v/a.mp4" and row["source_id"] == _sha8("/v/a.mp4")
    assert (row["label"], row["label_id"], row["status"], row["error"]) == ("Sad", 5, "ok", None)
    assert json.loads(row["fields"]) == {"speaker": "s1", "where": "/x", "n": 3}  # a Path as its text
    assert row["tokens"] == 7 and row["fps"] == 25.0
    assert all(row[k] is None for k in NAMES if k not in ("source", "source_id", "label", "label_id", "status",
                                                          "fields", "tokens", "fps"))
    bare = records.new_row(VideoItem("/v/b.mp4"), "error", "why")
    assert bare["fields"] is None and bare["label"] is None and bare["label_id"] is None and bare["error"] == "why"


@pytest.mark.parametrize("name, stem", [
    ("clip.mp4", "clip"),
    ("my clip (1).final.MOV", "my_clip__1__final"),
    ("a-b_c.mkv", "a-b_c"),
    ("é über.mp4", "é_über"),  # letters of any script are kept
    ("x" * 50 + ".mp4", "x" * 40),
    ("y" * 39 + "!!.mp4", "y" * 39 + "_"),
])
def test_output_stem_sanitises_and_cuts_at_40(name, stem):
    source = f"/data/{name}"
    assert records.output_stem(VideoItem(source)) == f"features/{stem}-{_sha8(source, 8)}"


# --- atomic writes -----------------------------------------------------------------------------------------------------
def test_write_json_makes_missing_parents_and_writes_compact_utf8(tmp_path):
    path = tmp_path / "a" / "b" / "c.json"
    data = {"k": [1, 2.5, None], "s": "x y", "p": Path("/p/q"), "n": {"t": True}}
    assert records.write_json(path, data) == path
    assert path.read_bytes() == b'{"k":[1,2.5,null],"s":"x y","p":"/p/q","n":{"t":true}}\n'
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.json"]  # the .part was renamed
    records.write_json(path, [1])  # an existing file is replaced
    assert path.read_bytes() == b"[1]\n"


def test_write_npz_keeps_the_name_and_the_arrays(tmp_path):
    path = tmp_path / "deep" / "er" / "v.npz"
    arrays = {"a": np.arange(6, dtype=np.int32).reshape(2, 3), "b": np.array([0.5, 1.5])}
    assert records.write_npz(path, arrays) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["v.npz"]
    with np.load(path) as z:
        assert sorted(z.files) == ["a", "b"]
        np.testing.assert_array_equal(z["a"], arrays["a"])
        assert z["a"].dtype == np.int32
    records.write_npz(path.with_name("w.npz"), {"b": arrays["b"]})  # a second file in the same folder
    assert records.read_features(path.with_name("w.npz"))["b"].tolist() == [0.5, 1.5]


def test_write_stats_is_indented_json_with_a_newline(tmp_path):
    path = records.write_stats(tmp_path, {"a": 1, "b": [1, 2], "p": Path("/z")})
    assert path == tmp_path / "stats.json"
    assert path.read_text() == '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ],\n  "p": "/z"\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


# --- token tables --------------------------------------------------------------------------------------------------
def _arrays(n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {
        "landmarks": rng.normal(size=(n, 68, 2)).astype(np.float32),  # given first: the table orders the columns
        "tokens": rng.normal(size=(n, 5)),  # float64: stored as float32
        "time": np.arange(n) / 25.0,
        "frame_ind": np.arange(n, dtype=np.int64) * 2,
        "traj": np.zeros(n, np.int32),
        "box": rng.uniform(0, 90, (n, 4)).astype(np.float32),
        "no_face_frames": np.array([1, 3, 5, 7]),  # not one row per token: not in the table
    }


def test_tokens_table_columns_types_and_order(tmp_path):
    arrays = _arrays()
    path = tmp_path / "new" / "dir" / "v.parquet"
    assert records.write_tokens_table(path, arrays) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["v.parquet"]
    t = pq.read_table(path)
    assert t.column_names == ["traj", "frame_ind", "time", "box", "tokens", "landmarks"]
    assert t.schema.field("tokens").type == pa.list_(pa.float32(), 5)
    assert t.schema.field("landmarks").type == pa.list_(pa.list_(pa.float32(), 2), 68)
    assert t.schema.field("traj").type == pa.int32() and t.schema.field("time").type == pa.float64()
    assert t.num_rows == 3
    np.testing.assert_array_equal(np.array(t.column("landmarks").to_pylist(), np.float32), arrays["landmarks"])
    np.testing.assert_array_equal(np.array(t.column("tokens").to_pylist(), np.float32),
                                  arrays["tokens"].astype(np.float32))
    assert t.column("frame_ind").to_pylist() == [0, 2, 4]
    records.write_tokens_table(path.with_name("w.parquet"), {"traj": arrays["traj"]})  # the folder exists now
    assert pq.read_table(path.with_name("w.parquet")).column_names == ["traj"]


def test_read_tokens_gives_the_arrays_back(tmp_path):
    arrays = _arrays(4)
    back = records.read_tokens(records.write_tokens_table(tmp_path / "v.parquet", arrays))
    assert list(back) == ["traj", "frame_ind", "time", "box", "tokens", "landmarks"]
    assert back["landmarks"].shape == (4, 68, 2) and back["landmarks"].dtype == np.float32
    np.testing.assert_array_equal(back["landmarks"], arrays["landmarks"])
    assert back["tokens"].shape == (4, 5) and back["tokens"].dtype == np.float32
    np.testing.assert_array_equal(back["tokens"], arrays["tokens"].astype(np.float32))
    np.testing.assert_array_equal(back["box"], arrays["box"])
    assert back["traj"].dtype == np.int32 and back["frame_ind"].tolist() == [0, 2, 4, 6]
    np.testing.assert_array_equal(back["time"], arrays["time"])


def test_read_tokens_of_a_table_written_in_chunks(tmp_path):
    flat = pa.array(np.arange(12, dtype=np.float32))
    col = pa.chunked_array([pa.FixedSizeListArray.from_arrays(flat.slice(0, 6), 3),
                            pa.FixedSizeListArray.from_arrays(flat.slice(6, 6), 3)])
    pq.write_table(pa.table({"tokens": col, "traj": pa.chunked_array([[0, 0], [1, 1]])}), tmp_path / "c.parquet")
    back = records.read_tokens(tmp_path / "c.parquet")
    np.testing.assert_array_equal(back["tokens"], np.arange(12, dtype=np.float32).reshape(4, 3))
    assert back["traj"].tolist() == [0, 0, 1, 1]


# --- index, parts and resume ---------------------------------------------------------------------------------------
def _row(tmp: Path, name: str, status: str = "ok", settings: str = "S", files: bool = True) -> dict:
    item = VideoItem(f"/videos/{name}.mp4")
    stem = records.output_stem(item)
    row = records.new_row(item, status, None if status != "error" else "bad", settings=settings, tokens=2)
    if files:
        row.update(json=f"{stem}.json", npz=f"{stem}.npz", parquet=f"{stem}.parquet")
        for ext in ("json", "npz", "parquet"):
            (tmp / f"{stem}.{ext}").parent.mkdir(parents=True, exist_ok=True)
            (tmp / f"{stem}.{ext}").write_text("x")
    return row


def test_parts_live_in_index_parts_named_by_source_id(tmp_path):
    out = tmp_path / "OUT"  # does not exist yet: the part makes its folders
    row = _row(tmp_path, "a", files=False)
    path = records.write_part(out, row)
    assert path == out / "index" / "parts" / f"{_sha8('/videos/a.mp4')}.parquet"
    assert records.parts_dir(out) == out / "index" / "parts"
    t = pq.read_table(path)
    assert t.schema == records.schema() and t.to_pylist() == [row]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_write_index_sorts_by_source(tmp_path):
    rows = [_row(tmp_path, n, files=False) for n in ("c", "a", "b")]
    path = records.write_index(tmp_path / "o", rows)
    assert path == tmp_path / "o" / "features.parquet"
    assert pq.read_table(path).column("source").to_pylist() == ["/videos/a.mp4", "/videos/b.mp4", "/videos/c.mp4"]
    df = records.read_index(path)
    assert list(df.columns) == NAMES and len(df) == 3


def test_done_rows_keeps_final_rows_with_the_same_settings_and_their_files(tmp_path):
    out = tmp_path
    assert records.done_rows(out, "S") == {}  # no parts folder yet
    rows = {
        "ok": _row(out, "ok"),
        "no_face": _row(out, "no_face", "no_face"),
        "skipped": _row(out, "skipped", "skipped", files=False),  # no files to check
        "error": _row(out, "error", "error", files=False),
        "other": _row(out, "other", settings="T"),
        "no_json": _row(out, "no_json"),
        "no_npz": _row(out, "no_npz"),
        "no_parquet": _row(out, "no_parquet"),
    }
    for key in ("json", "npz", "parquet"):
        (out / rows[f"no_{key}"][key]).unlink()
    for row in rows.values():
        records.write_part(out, row)
    done = records.done_rows(out, "S")
    assert sorted(done) == ["/videos/no_face.mp4", "/videos/ok.mp4", "/videos/skipped.mp4"]
    assert done["/videos/ok.mp4"] == rows["ok"]
    assert sorted(records.done_rows(out, "T")) == ["/videos/other.mp4"]


def test_an_unreadable_part_is_deleted_and_the_others_still_count(tmp_path):
    good = _row(tmp_path, "good")
    records.write_part(tmp_path, good)
    broken = records.parts_dir(tmp_path) / "0123456789ab.parquet"
    broken.write_bytes(b"not parquet at all")
    (records.parts_dir(tmp_path) / "notes.txt").write_text("ignored")  # only *.parquet are parts
    assert list(records.done_rows(tmp_path, "S")) == ["/videos/good.mp4"]
    assert not broken.exists() and (records.parts_dir(tmp_path) / "notes.txt").exists()


def test_constants_of_the_resume_rule():
    done, failed = records.DONE, records.FAILED
    assert done == {"ok", "no_face", "skipped"} and failed == {"error"}
    assert set(records.STATUSES) == records.DONE | records.FAILED
