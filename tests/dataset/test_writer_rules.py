"""DatasetWriter's exact rules: shard limits, members, rows, settings, resume clean-up and final rows.

Each test reads the files back with tarfile / pyarrow / json (not through the writer), so a writer that
writes the wrong bytes, names, sizes or rows turns it red.
"""

from __future__ import annotations

import json
import os
import tarfile

import pyarrow.parquet as pq
import pytest

from faceexpr_cli.dataset import format as fmt
from faceexpr_cli.dataset.writer import DatasetWriter, final_rows, write_stats
from faceexpr_cli.errors import UsageError

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(200))  # bytes are bytes to the writer: no need for a real clip


def _members(path):
    with tarfile.open(path) as tar:
        return [(m.name, m.size, m.mode, m.mtime, tar.extractfile(m).read()) for m in tar.getmembers()]


def _part(root, number):
    return pq.read_table(root / fmt.part_name(number)).to_pylist()


def test_members_are_the_bytes_given_with_fixed_mode_and_time_and_the_key_in_the_json(tmp_path):
    with DatasetWriter(tmp_path) as w:
        w.add_sample("a-1", MP4, {"fps": 25.0, "z": 1}, {"source": "s.mp4", "start": 1.5, "frames": 10.0})
    mp4, meta = _members(tmp_path / "clips-000000.tar")
    assert mp4 == ("a-1.mp4", len(MP4), 0o644, 0, MP4)
    assert meta[:4] == ("a-1.json", len(meta[4]), 0o644, 0)
    assert meta[4] == json.dumps({"fps": 25.0, "z": 1, "key": "a-1"}, sort_keys=True).encode()
    row, = pq.read_table(tmp_path / "index.parquet").to_pylist()
    assert (row["key"], row["status"], row["shard"], row["bytes"], row["source"], row["start"], row["frames"]) == (
        "a-1", "ok", "clips-000000.tar", len(MP4), "s.mp4", 1.5, 10)
    assert isinstance(row["frames"], int)


@pytest.mark.parametrize("key", ["a.b", "a b", "_a", "", "a/b"])
def test_keys_that_are_not_plain_are_refused_before_anything_is_written(tmp_path, key):
    w = DatasetWriter(tmp_path)
    with pytest.raises(ValueError, match="letters, digits"):
        w.add_sample(key, MP4, {}, {})
    assert w._tar is None and not list(tmp_path.glob("*.tar")) and not list(tmp_path.glob(".*.part"))


def test_a_shard_closes_when_it_reaches_max_count_exactly(tmp_path):
    with DatasetWriter(tmp_path, max_count=2) as w:
        for i in range(5):
            w.add_sample(f"k{i}", MP4, {}, {})
        assert [p.name for p in w.shards_written] == ["clips-000000.tar", "clips-000001.tar"]
    names = [[m[0] for m in _members(tmp_path / fmt.shard_name(n))] for n in range(3)]
    assert names == [["k0.mp4", "k0.json", "k1.mp4", "k1.json"], ["k2.mp4", "k2.json", "k3.mp4", "k3.json"],
                     ["k4.mp4", "k4.json"]]
    assert [[r["key"] for r in _part(tmp_path, n)] for n in range(3)] == [["k0", "k1"], ["k2", "k3"], ["k4"]]
    assert [r["shard"] for r in _part(tmp_path, 1)] == ["clips-000001.tar"] * 2


def test_max_count_below_one_means_one_per_shard(tmp_path):
    with DatasetWriter(tmp_path, max_count=0, max_bytes=0) as w:
        assert (w.max_count, w.max_bytes) == (1, 1)
        w.add_sample("a", MP4, {}, {})
        w.add_sample("b", MP4, {}, {})
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == ["clips-000000.tar", "clips-000001.tar"]


def test_size_limit_counts_the_clip_and_its_json(tmp_path):
    meta_len = len(json.dumps({"key": "a"}, sort_keys=True).encode())
    exact = len(MP4) + meta_len
    with DatasetWriter(tmp_path, max_bytes=exact) as w:  # reached exactly by one sample
        w.add_sample("a", MP4, {}, {})
        assert w._tar is None and w._number == 1
    with DatasetWriter(tmp_path / "more", max_bytes=exact + 1) as w:  # one byte short: the shard stays open
        w.add_sample("a", MP4, {}, {})
        assert w._tar is not None and w._count == 1 and w._bytes == exact


def test_a_part_is_written_for_failure_rows_alone_and_no_tar(tmp_path):
    with DatasetWriter(tmp_path) as w:
        w.add_row({"status": "failed", "source": "bad.mp4", "error": "bad.mp4: not a video", "frames": 3.0})
        w.input_done("good.mp4")
    assert not list(tmp_path.glob("*.tar"))
    rows = _part(tmp_path, 0)
    assert [(r["status"], r["source"], r["error"], r["frames"]) for r in rows] == [
        ("failed", "bad.mp4", "bad.mp4: not a video", 3), ("input_done", "good.mp4", None, None)]
    index = pq.read_table(tmp_path / "index.parquet").to_pylist()
    assert [r["status"] for r in index] == ["failed"]  # finished-input markers stay out of the index


def test_close_with_nothing_written_leaves_an_empty_index_and_no_part(tmp_path):
    rows = DatasetWriter(tmp_path).close()
    assert rows == [] and not list(tmp_path.glob("clips-*"))
    assert pq.read_table(tmp_path / "index.parquet").num_rows == 0


def test_close_returns_every_final_row_with_the_markers(tmp_path):
    with DatasetWriter(tmp_path, max_count=1) as w:
        w.add_sample("a", MP4, {}, {"source": "s"})
        w.input_done("s")
        rows = w.close()
    assert [(r["key"], r["status"]) for r in rows] == [("a", "ok"), (None, "input_done")]


def test_run_json_holds_the_settings_as_json_and_the_format(tmp_path):
    DatasetWriter(tmp_path, settings={"b": (1, 2), "a": tmp_path}).close()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run == {"settings": {"a": str(tmp_path), "b": [1, 2]}, "format": "fx-clips/1"}
    DatasetWriter(tmp_path / "none").close()
    assert json.loads((tmp_path / "none" / "run.json").read_text())["settings"] == {}


def test_other_settings_are_refused_naming_the_keys_that_changed(tmp_path):
    with DatasetWriter(tmp_path, settings={"mode": "keywords", "pad": 0.5, "fps": 25}) as w:
        w.add_sample("a", MP4, {}, {})
    with pytest.raises(UsageError, match=r"other settings \(mode, pad, seed\)") as err:
        DatasetWriter(tmp_path, settings={"mode": "random", "pad": 1.0, "fps": 25, "seed": 3})
    assert "--overwrite" in err.value.hint
    # the same settings (tuples and lists alike once stored as JSON) resume
    again = DatasetWriter(tmp_path, settings={"fps": 25, "pad": 0.5, "mode": "keywords"})
    assert again.resumed and again.done_keys == {"a"}


def test_other_settings_are_fine_when_no_shard_finished(tmp_path):
    DatasetWriter(tmp_path, settings={"mode": "keywords"})  # run.json written, nothing finished
    w = DatasetWriter(tmp_path, settings={"mode": "random"})
    assert not w.resumed
    assert json.loads((tmp_path / "run.json").read_text())["settings"] == {"mode": "random"}


def test_overwrite_clears_the_run_and_starts_numbering_again(tmp_path):
    with DatasetWriter(tmp_path, max_count=1, settings={"mode": "a"}) as w:
        for k in "xyz":
            w.add_sample(k, MP4, {}, {})
    write_stats(tmp_path, {"clips": 3})
    (tmp_path / "keep.txt").write_text("mine")
    w = DatasetWriter(tmp_path, settings={"mode": "b"}, overwrite=True)
    assert not w.resumed and w._number == 0 and w.done_keys == set() and w.previous_rows == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "run.json"]


def test_resume_reads_keys_inputs_and_numbering_back_and_cleans_leftovers(tmp_path):
    with DatasetWriter(tmp_path, max_count=2) as w:
        for k in ("a", "b", "c"):
            w.add_sample(k, MP4, {}, {"source": "s1"})
        w.add_row({"status": "failed", "source": "s2", "error": "s2: broken"})
        w.input_done("s1")
    # a run that died: a temporary file, a tar whose part never came, and an unrelated tar name
    (tmp_path / ".clips-000009.tar.123.part").write_bytes(b"x")
    (tmp_path / "clips-000007.tar").write_bytes(b"x")
    (tmp_path / "clips-7.tar").write_bytes(b"x")
    w = DatasetWriter(tmp_path, max_count=2)
    assert w.resumed and w._number == 2
    assert w.done_keys == {"a", "b", "c"} and w.done_inputs == {"s1"}
    assert [r["key"] for r in w.previous_rows if r["status"] == "ok"] == ["a", "b", "c"]
    assert len(w.previous_rows) == 5
    assert not (tmp_path / ".clips-000009.tar.123.part").exists()
    assert not (tmp_path / "clips-000007.tar").exists()
    assert (tmp_path / "clips-7.tar").exists() and (tmp_path / "clips-000001.tar").exists()
    w.add_sample("d", MP4, {}, {})
    w.close()
    assert (tmp_path / "clips-000002.tar").exists()
    assert [r["key"] for r in pq.read_table(tmp_path / "index.parquet").to_pylist() if r["status"] == "ok"] == [
        "a", "b", "c", "d"]


def test_temporary_names_are_hidden_and_carry_the_process_id(tmp_path):
    w = DatasetWriter(tmp_path)
    w.add_sample("a", MP4, {}, {})
    assert w._tar_tmp.name == f".clips-000000.tar.{os.getpid()}.part" and w._tar_tmp.exists()
    assert not (tmp_path / "clips-000000.tar").exists()  # only renamed when closed
    tmp = w._tar_tmp
    w.abort()
    assert not tmp.exists() and w._tar is None
    assert not list(tmp_path.glob(".*")) and not list(tmp_path.glob("*.tar")) and not list(tmp_path.glob("*.parquet"))


def test_an_error_drops_the_open_shard_and_a_keyboard_stop_keeps_it(tmp_path):
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path / "err") as w:
        w.add_sample("a", MP4, {}, {})
        raise RuntimeError("boom")
    assert not list((tmp_path / "err").glob("clips-*")) and not list((tmp_path / "err").glob(".*.part"))
    assert not (tmp_path / "err" / "index.parquet").exists()
    with pytest.raises(KeyboardInterrupt), DatasetWriter(tmp_path / "int") as w:
        w.add_sample("a", MP4, {}, {})
        raise KeyboardInterrupt
    assert [m[0] for m in _members(tmp_path / "int" / "clips-000000.tar")] == ["a.mp4", "a.json"]
    assert [r["key"] for r in _part(tmp_path / "int", 0)] == ["a"]
    assert not (tmp_path / "int" / "index.parquet").exists()  # the index comes with a finished run only


def test_close_shard_twice_writes_one_part(tmp_path):
    w = DatasetWriter(tmp_path)
    w.add_sample("a", MP4, {}, {})
    w.close_shard()
    w.close_shard()
    assert w._number == 1 and [p.name for p in sorted(tmp_path.glob("*.parquet"))] == ["clips-000000.parquet"]
    assert w._count == 0 and w._bytes == 0 and w._rows == []


def _row(status, source, key=None, **kw):
    return fmt.normalise_row({"status": status, "source": source, "key": key, **kw})


def test_final_rows_keep_the_last_attempt_at_each_input():
    rows = [
        _row("failed", "s1", error="first"),  # s1 later finished: its failure goes
        _row("failed", "s2", error="try 1"),
        _row("dropped", "s1", "k1", reason="short"),
        _row("ok", "s1", "k0"),
        _row("input_done", "s1"),
        _row("failed", "s2", error="try 2"),  # s2 failed twice: only the last stays
        _row("dropped", "s1", "k1", reason="short"),  # the same dropped hit from a resumed attempt: once
        _row("dropped", "s1", "k2", reason="short"),
        _row("input_done", "s1"),
        _row("failed", "s3", error="once"),
    ]
    out = final_rows(rows)
    assert [(r["status"], r["source"], r["key"], r["error"]) for r in out] == [
        ("dropped", "s1", "k1", None), ("ok", "s1", "k0", None), ("input_done", "s1", None, None),
        ("failed", "s2", None, "try 2"), ("dropped", "s1", "k2", None), ("failed", "s3", None, "once")]


def test_ok_rows_are_never_merged_even_with_the_same_key():
    rows = [_row("ok", "s", "k"), _row("ok", "s", "k")]
    assert len(final_rows(rows)) == 2


def test_write_stats_is_sorted_indented_json(tmp_path):
    path = write_stats(tmp_path, {"b": 1, "a": tmp_path})
    assert path == tmp_path / "stats.json"
    assert path.read_text() == json.dumps({"a": str(tmp_path), "b": 1}, indent=2, sort_keys=True) + "\n"
    assert not list(tmp_path.glob(".*.part"))


def test_an_empty_index_still_has_every_column(tmp_path):
    DatasetWriter(tmp_path).close()
    assert pq.read_schema(tmp_path / "index.parquet").names == fmt.INDEX_SCHEMA.names


def test_rows_get_every_column_and_subjects_as_json_text():
    row = fmt.normalise_row({"key": "a", "subject": {"name": "ann", "age": 30}, "frames": 4.0, "extra": 1})
    assert list(row) == fmt.INDEX_SCHEMA.names and "extra" not in row
    assert row["subject"] == '{"age": 30, "name": "ann"}' and row["frames"] == 4 and row["bytes"] is None
    assert fmt.normalise_row({"key": "a"})["subject"] is None
    assert fmt.normalise_row({"subject": '{"name": "bo"}'})["subject"] == '{"name": "bo"}'  # text kept as is
