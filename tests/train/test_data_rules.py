"""Clip sources and the sampler at their boundaries: frame-count limits, sidecar rules, the LRU cache, pick ranges,
shard index rows, and the exact words of each refusal. Uses the session's 30-frame 56 px test clips."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from faceexpr_cli.errors import ConfigError, DataError, MissingFileError
from faceexpr_cli.train import data as D
from faceexpr_cli.train import subjects as S
from faceexpr_cli.train.data import BatchStream, FolderClips, ShardClips, SubjectTable


def test_subject_table_rows_and_json():
    table = SubjectTable(["a", "b", "a"])
    assert table.rows == {"a": 0, "b": 1} and table.capacity is None
    assert table.add("b") == 1 and table.add("c") == 2
    assert table.to_json() == json.dumps({"subjects": ["a", "b", "c"]}, indent=1)
    full = SubjectTable(["x"], capacity=1)
    assert full.add("x") == 0  # a known subject never needs a new row
    with pytest.raises(DataError) as info:
        full.add("y")
    assert info.value.hint == "raise max_subjects in the model args (expression.args.max_subjects=...)"
    assert SubjectTable(capacity=0).rows == {}


def test_subject_table_row_message_lists_five_names():
    five = SubjectTable(list("abcde"))
    with pytest.raises(DataError) as info:
        five.row("z")
    assert info.value.message == "subject 'z' is not in the subject table (5 subjects: a, b, c, d, e)"
    assert info.value.hint == "train with this subject, or pass a known subject id"
    with pytest.raises(DataError, match=r"\(6 subjects: a, b, c, d, e \.\.\.\)$"):
        SubjectTable(list("abcdef")).row("z")


def test_subject_table_load(tmp_path):
    with pytest.raises(MissingFileError, match="subject table not found"):
        SubjectTable.load(tmp_path / "none.json")
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"subjects": ["p", "q"]}))
    table = SubjectTable.load(path, capacity=2)
    assert table.rows == {"p": 0, "q": 1} and table.capacity == 2
    with pytest.raises(DataError, match="does not fit: the model has 1 subject rows"):
        SubjectTable.load(path, capacity=1)


@pytest.fixture
def flat(clip_folder, tmp_path):
    """Two copies of one 30-frame clip, a.mp4 and B.MP4, beside files that are not clips."""
    root = tmp_path / "flat"
    root.mkdir()
    clip = clip_folder / "astronaut" / "clip_00.mp4"
    shutil.copy(clip, root / "a.mp4")
    shutil.copy(clip, root / "B.MP4")
    shutil.copy(clip, root / ".hidden.mp4")
    (root / "notes.txt").write_text("x")
    return root


def test_folder_listing_keys_frames_and_rate(flat):
    src = FolderClips(flat, 56, 30)  # exactly the clip's 30 frames: kept
    assert [(c.key, c.frames, c.fps, c.has_audio, c.subject) for c in src.clips] == [
        ("B.MP4", 30, 25.0, True, "flat"), ("a.mp4", 30, 25.0, True, "flat")]
    assert src.streaming is False and src._cache_size == 64 and src.subject_from == "auto"
    slow = FolderClips(flat, 56, 2, fps=12.5)  # 1.2 s at 12.5 fps
    assert [(c.frames, c.fps) for c in slow.clips] == [(15, 12.5), (15, 12.5)]
    one = FolderClips(flat / "a.mp4", 56, 2)
    assert [(c.key, c.subject) for c in one.clips] == [("a.mp4", "a.mp4")]


def test_folder_refusals(flat, tmp_path, fx_log):
    with pytest.raises(MissingFileError, match="dataset not found"):
        FolderClips(tmp_path / "none", 56, 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        FolderClips(tmp_path / "empty", 56, 2)
    assert info.value.message == f"{tmp_path / 'empty'}: no clips (.mp4/.mov/.mkv) found"
    assert info.value.hint == "point data.path at a folder of face clips"
    fx_log()
    with pytest.raises(DataError) as info:
        FolderClips(flat, 56, 31)
    assert info.value.message == f"{flat}: no clip has 31 frames"
    assert info.value.hint == "lower data.frames or add longer clips"
    assert "2 clip(s) shorter than 31 frames skipped (e.g. B.MP4)" in fx_log()


def test_sidecars_name_subjects_and_bad_sidecars_are_data_errors(flat, fx_log):
    (flat / "a.json").write_text(json.dumps({"speaker": "ann", "subject": "s1"}))
    assert FolderClips(flat, 56, 2).subjects() == ["flat", "s1"]
    fx_log()
    src = FolderClips(flat, 56, 2, subject_from="speaker")
    assert [(c.key, c.subject) for c in src.clips] == [("a.mp4", "ann")]
    assert ("1 clip(s) skipped: data.subject_from=speaker finds no subject in their record (e.g. B.MP4)"
            in fx_log())
    with pytest.raises(ConfigError, match=r"subject_from=nope: .* \(its <clip>.json sidecars\) has no such column "
                                          r"\(columns: speaker, subject\)"):
        FolderClips(flat, 56, 2, subject_from="nope")
    with pytest.raises(ConfigError, match="data.subject_from=track: no usable clip in .* records 'track_id'"):
        FolderClips(flat, 56, 2, subject_from="track")
    (flat / "B.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"B.json: not a JSON object$"):
        FolderClips(flat, 56, 2)
    (flat / "B.json").write_text("{oops")
    with pytest.raises(DataError, match=r"B.json: not a JSON object \("):
        FolderClips(flat, 56, 2)


def test_decoded_clips_stay_in_a_small_lru_cache(flat):
    src = FolderClips(flat, 56, 2, cache_clips=1)
    first = src.frames(0)
    assert first.shape == (30, 56, 56, 3) and first.dtype == np.uint8
    assert src.frames(0) is first
    src.frames(1)
    assert list(src._cache) == [1] and src.frames(0) is not first
    none = FolderClips(flat, 56, 2, cache_clips=0)
    none.frames(0)
    assert len(none._cache) == 0
    two = FolderClips(flat, 56, 2, cache_clips=2)
    a = two.frames(0)
    two.frames(1)
    assert two.frames(0) is a and list(two._cache) == [1, 0]  # a hit moves the clip to the newest end


def test_pick_draws_without_replacement_and_starts_in_range(clip_folder):
    src = FolderClips(clip_folder, 56, 2)
    for seed in range(20):
        picks = src.pick(np.random.default_rng(seed), 4, 29)
        assert sorted(i for i, _ in picks) == [0, 1, 2, 3]  # as many clips as the folder: each once
    starts = {s for seed in range(40) for _, s in src.pick(np.random.default_rng(seed), 2, 29)}
    assert starts == {0, 1}  # 30 frames, a window of 29: start 0 or 1, both reached
    assert {s for seed in range(10) for _, s in src.pick(np.random.default_rng(seed), 3, 30)} == {0}
    many = src.pick(np.random.default_rng(0), 9, 10)  # more than the folder holds: drawn with replacement
    assert len(many) == 9 and all(0 <= s <= 20 for _, s in many)


def test_batch_fields_and_a_clip_shorter_than_its_record(clip_folder):
    src = FolderClips(clip_folder, 56, 2)
    batch = src.batch([(2, 4), (0, 0)], 3)
    assert batch.frames.shape == (2, 3, 56, 56, 3)
    assert np.array_equal(batch.frames[0], src.frames(2)[4:7])
    assert batch.subjects == ["grace_hopper", "astronaut"] and batch.starts == [4, 0]
    assert [c.key for c in batch.clips] == ["grace_hopper/clip_00.mp4", "astronaut/clip_00.mp4"]
    src.clips[1].frames = 40  # the record promises more than the file holds
    with pytest.raises(DataError) as info:
        src.batch([(1, 5)], 30)
    assert info.value.message == f"{src.clips[1].path}: decodes to 30 frames, its record says 40"
    assert info.value.hint.startswith("re-run fx crop on its source")


def test_batch_stream_reads_ahead_and_counts_steps(clip_folder):
    src = FolderClips(clip_folder, 56, 2)
    stream = BatchStream(src, 1, 3, seed=0, rank=0, start=4)
    assert stream.workers == 2 and stream.pool is not None
    it = iter(stream)
    first = next(it)
    assert stream.step == 4 and sorted(stream.ahead) == [5, 6]
    second = next(it)
    assert stream.step == 5 and sorted(stream.ahead) == [6, 7]
    plain = iter(BatchStream(src, 1, 3, seed=0, rank=0, start=4, workers=0))
    assert next(plain).starts == first.starts and next(plain).starts == second.starts
    stream.close()
    BatchStream(src, 1, 3, 0, 0, 0, workers=0).close()  # no pool: nothing to shut


def test_which_source_opens_a_path(clip_folder, tmp_path):
    assert not D._is_shards(clip_folder)
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "x.tar").write_bytes(b"")
    assert D._is_shards(shards) and D._is_shards(tmp_path / "one.tar") and D._is_shards(str(tmp_path / "c-*.tar"))
    assert D._is_shards("a?b") and D._is_shards("a[0]")
    assert not D._is_shards(tmp_path / "X-clips") and not D._is_shards("Xa.mp4")  # no pattern character
    src = D.open_source(clip_folder, 56, 10, cache_clips=3)
    assert type(src) is FolderClips and src._cache_size == 3 and src.size == 56
    assert D.open_source(clip_folder, 28, 10, fps=12.5).fps == 12.5
    with pytest.raises(ConfigError, match="subject_from=source: no usable clip .* records 'source'"):
        D.open_source(clip_folder, 56, 10, subject_from="source")  # passed on: these clips have no sidecars


def _shards(tmp_path, rows):
    root = tmp_path / "ds"
    root.mkdir(parents=True)
    (root / "clips-000000.tar").write_bytes(b"")  # listed, never read: the index gives the subjects
    if rows is not None:
        pq.write_table(pa.Table.from_pylist(rows), root / "index.parquet")
    return root


def _r(key, frames=30, status="ok", **more):
    return {"key": key, "status": status, "frames": frames, "duration": frames / 25, "source": f"/v/{key}.mp4",
            "speaker": more.pop("speaker", "spk"), **more}


def test_shard_index_rows_give_the_subjects(tmp_path, fx_log):
    root = _shards(tmp_path, [_r("a"), _r("b", frames=10), _r("c", frames=9), _r("d", status="error")])
    fx_log()
    src = ShardClips(root, 56, 10)
    assert src.streaming and src.rule is None
    assert src.subject_of == {"a": S.source_subject(_r("a")),
                              "b": S.source_subject(_r("b"))}
    assert "1 clip(s) shorter than 10 frames skipped (e.g. c)" in fx_log()
    assert src.subjects() == sorted(set(src.subject_of.values()))
    assert src._subject({"key": "a"}) == src.subject_of["a"] and src._subject({"key": "c"}) is None
    spk = ShardClips(root, 56, 10, subject_from="speaker")
    assert spk.subject_of == {"a": "spk", "b": "spk"}
    # at 12.5 fps: 30 frames at 25 fps -> 1.2 s -> 15 frames; 10 -> 5
    assert set(ShardClips(root, 56, 10, fps=12.5).subject_of) == {"a"}


def test_shard_index_errors(tmp_path):
    root = _shards(tmp_path, [_r("a", frames=5), _r("b", frames=6)])
    with pytest.raises(DataError) as info:
        ShardClips(root, 56, 10)
    assert info.value.message == f"{root}: no clip has 10 frames"
    assert info.value.hint == "lower data.frames or add longer clips"
    with pytest.raises(ConfigError, match="records 'track_id'"):
        ShardClips(root, 56, 2, subject_from="track")
    named = _shards(tmp_path / "n", [_r("a", subject_id="")])
    assert ShardClips(named, 56, 2, subject_from="auto").subject_of == {"a": S.source_subject(_r("a"))}
    no_source = _shards(tmp_path / "x", [{"key": "a", "status": "ok", "frames": 30, "speaker": None}])
    assert ShardClips(no_source, 56, 2).subject_of == {"a": "ds"}  # auto: nothing named, the dataset folder
    assert ShardClips(_shards(tmp_path / "e", [_r("a", status="error")]), 56, 2).subject_of == {}


def test_shards_without_an_index_read_each_sample(tmp_path):
    root = _shards(tmp_path, None)
    auto = ShardClips(root, 56, 10)
    assert auto.subject_of is None and auto.rule is None and auto.subjects() == []
    assert auto._subject({"meta": {"subject_id": "z"}}) == "z"
    assert auto._subject({"meta": {}}) == "ds"
    track = ShardClips(root, 56, 10, subject_from="track")
    assert track.rule is S.track_subject and track._subject({"meta": {}}) is None
    col = ShardClips(root, 56, 10, subject_from="speaker")
    assert col._subject({"meta": {"speaker": "s"}}) == "s" and col._subject({"meta": {}}) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises((DataError, MissingFileError)):
        ShardClips(empty, 56, 10)


def test_shard_samples_to_a_batch():
    import torch

    group = [({"key": "k1", "url": "/d/s.tar", "length": 4, "fps": 25, "frames": torch.zeros(4, 2, 2, 3)}, "p"),
             ({"key": "k2", "url": None, "length": 4, "fps": 12.5, "frames": torch.ones(4, 2, 2, 3)}, "q")]
    batch = ShardClips._to_batch(group)
    assert batch.frames.shape == (2, 4, 2, 2, 3) and batch.frames[1].min() == 1
    assert batch.subjects == ["p", "q"] and batch.starts == [0, 0]
    assert [(str(c.path), c.frames, c.fps) for c in batch.clips] == [("/d/s.tar", 4, 25.0), ("k2", 4, 12.5)]


def test_every_video_suffix_is_listed(clip_folder, tmp_path):
    root = tmp_path / "kinds"
    root.mkdir()
    for suffix in (".mp4", ".mov", ".mkv", ".m4v", ".webm", ".avi"):
        shutil.copy(clip_folder / "astronaut" / "clip_00.mp4", root / f"c{suffix}")
    assert [c.key for c in FolderClips(root, 56, 2).clips] == ["c.m4v", "c.mkv", "c.mov", "c.mp4", "c.webm"]


def test_a_shard_row_without_a_frame_count_is_kept(tmp_path):
    root = _shards(tmp_path, [{"key": "a", "status": "ok", "frames": None, "duration": None, "source": "/v/a.mp4"}])
    assert set(ShardClips(root, 56, 10).subject_of) == {"a"}  # the stream checks its length as it decodes


def test_odd_sized_clips_are_counted_in_one_warning(flat, fx_log):
    fx_log()
    FolderClips(flat, 28, 2)
    assert "2 clip(s) are not 28x28 and are resized on the fly (e.g. B.MP4 56x56)" in fx_log()
    FolderClips(flat, 56, 2)
    assert "resized" not in fx_log()


def test_streamed_batches_leave_out_clips_without_a_subject(clip_folder, tmp_path):
    from faceexpr_cli.dataset import DatasetWriter

    root = tmp_path / "shards"
    with DatasetWriter(root, max_count=2) as w:
        for p in sorted(clip_folder.rglob("*.mp4")):
            who = {"speaker": f"spk-{p.stem}"} if p.parent.name == "astronaut" else {}
            meta = {"subject": who, "fps": 25.0, "frames": 30}
            w.add_sample(f"{p.parent.name}-{p.stem}", p.read_bytes(), meta, meta)
    src = ShardClips(root, 56, 6, subject_from="speaker")
    assert src.subjects() == ["spk-clip_00", "spk-clip_01"]
    stream = src.stream(2, seed=0, rank=0, world=1, start=0)
    for _ in range(3):  # one batch per pass over the 4 samples: the next batch comes from the next epoch
        batch = next(stream)
        assert batch.frames.shape == (2, 6, 56, 56, 3)
        assert sorted(c.key for c in batch.clips) == ["astronaut-clip_00", "astronaut-clip_01"]
        assert sorted(batch.subjects) == ["spk-clip_00", "spk-clip_01"]
        assert [c.subject for c in batch.clips] == batch.subjects


def test_a_streamed_epoch_skips_clips_without_a_subject_and_goes_on(clip_folder, tmp_path):
    from faceexpr_cli.dataset import ClipDataset, DatasetWriter

    root = tmp_path / "shards"
    with DatasetWriter(root, max_count=2) as w:
        for p in sorted(clip_folder.rglob("*.mp4")):
            who = {"speaker": f"spk-{p.stem}"} if p.parent.name == "astronaut" else {}
            meta = {"subject": who, "fps": 25.0, "frames": 30}
            w.add_sample(f"{p.parent.name}-{p.stem}", p.read_bytes(), meta, meta)
    stream = ShardClips(root, 56, 6, subject_from="speaker").stream(1, seed=3, rank=0, world=1, start=0)
    got = [next(stream).clips[0].key for _ in range(6)]
    # each epoch's order, read independently: the clips with a subject, in it, are the batches of that epoch
    want = []
    for epoch in range(3):
        ds = ClipDataset(root, num_frames=6, size=56, audio=False, temporal="random", shuffle=True, seed=3,
                         rank=0, world_size=1)
        ds.set_epoch(epoch)
        want += [s["key"] for s in ds if s["key"].startswith("astronaut-")]
    assert got == want and sorted(got[:2]) == ["astronaut-clip_00", "astronaut-clip_01"]

