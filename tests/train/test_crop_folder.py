"""`fx crop` output as training data: read through manifest.parquet, one subject per source video by default.

The crop folder is made by the real crop run on two generated two-person videos: the shared 3 s `two_face_video`
(75 frames) and a 1.2 s `pair` video (30 frames), so each source holds two face tracks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.errors import ConfigError, DataError
from faceexpr_cli.train.data import CropFolderClips, FolderClips, ShardClips, open_source
from faceexpr_cli.train.subjects import check_subjects

TINY = ["--recipe", "joint-tiny", "trainer.tensorboard=false", "data.workers=0", "trainer.log_every=1", "--json"]


@pytest.fixture(scope="module")
def crop_run(two_face_video, tmp_path_factory):
    from faceexpr_cli.crop import CropOptions, crop_videos
    from faceexpr_cli.samples import make_talking_head

    media = tmp_path_factory.mktemp("crop_media")
    pair = make_talking_head(media / "pair.mp4", portraits=("grace_hopper", "astronaut"), seconds=1.2,
                             width=320, height=180, seed=3)
    out = tmp_path_factory.mktemp("crop_out")
    crop_videos([two_face_video.path, pair.path], out, CropOptions(size=56), resume=False)
    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok"] * 4, [(r["source"], r["status"], r["error"]) for r in rows]
    return out, rows


@pytest.fixture
def crop_copy(crop_run, tmp_path):
    """A private copy of the crop folder, to edit its manifest."""
    out, rows = crop_run
    copy = tmp_path / "crops"
    shutil.copytree(out, copy)
    return copy, [dict(r) for r in rows]


def _video_subject(row) -> str:
    return f"{Path(row['source']).stem}-{row['source_id'][:8]}"


def _rows_of(rows: list[dict], stem: str) -> list[dict]:
    return [r for r in rows if Path(r["source"]).stem == stem]


def _write_manifest(root: Path, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows), root / "manifest.parquet")


def test_one_subject_per_source_video_with_the_rows_frame_counts(crop_run):
    out, rows = crop_run
    src = open_source(out, 56, 10)
    assert isinstance(src, CropFolderClips)
    videos = sorted({_video_subject(r) for r in rows})
    assert videos == ["pair-" + _rows_of(rows, "pair")[0]["source_id"][:8],
                      "two_faces-" + _rows_of(rows, "two_faces")[0]["source_id"][:8]]
    assert src.subjects() == videos
    # ... the same names as the crop run's clip folders, and every ok row's clip, with its row's counts
    assert {Path(r["clip"]).parent.name for r in rows} == set(videos)
    by_key = {c.key: c for c in src.clips}
    assert sorted(by_key) == sorted(r["clip"] for r in rows)
    for r in rows:
        clip = by_key[r["clip"]]
        assert clip.subject == _video_subject(r) and clip.path == out / r["clip"]
        assert (clip.frames, clip.fps, clip.has_audio) == (r["n_frames"], 25.0, True)
    assert sorted(c.frames for c in src.clips) == [30, 30, 75, 75]
    assert all(src.frames(i).shape == (c.frames, 56, 56, 3) for i, c in enumerate(src.clips))
    # walking the folder (no manifest) reads the crop run's sidecars, which name the same videos
    assert FolderClips(out, 56, 10).subjects() == videos
    # the manifest file itself is accepted as data.path too
    assert open_source(out / "manifest.parquet", 56, 10).subjects() == videos


def test_rows_that_are_not_ok_missing_or_resized_are_not_used(crop_copy, fx_log):
    root, rows = crop_copy
    good = sorted(r["clip"] for r in rows)
    first = root / rows[0]["clip"]
    (root / "clips" / "failed").mkdir()
    shutil.copy(first, root / "clips" / "failed" / "t000_00.mp4")  # a file on disk, but its row says error
    (root / "clips" / "cut").mkdir()
    (root / "clips" / "cut" / "t000_00.mp4").write_bytes(first.read_bytes()[:300])  # shorter than its bytes
    for r in rows:
        r["bytes"] = (root / r["clip"]).stat().st_size
    extra = [
        {**rows[0], "status": "error", "error": "decoded 0 frames", "clip": "clips/failed/t000_00.mp4",
         "bytes": first.stat().st_size},
        {**rows[1], "clip": "clips/gone/t001_00.mp4"},  # ok, but the file is missing
        {**rows[2], "clip": "clips/cut/t000_00.mp4", "bytes": first.stat().st_size},
        {**rows[3], "status": "no_face", "clip": None, "n_frames": None},
    ]
    _write_manifest(root, rows + extra)
    fx_log()
    src = open_source(root, 56, 10)
    assert sorted(c.key for c in src.clips) == good
    assert len(src.subjects()) == 2
    err = fx_log()
    assert "1 ok row(s) skipped: clip file missing (e.g. clips/gone/t001_00.mp4)" in err
    assert "1 ok row(s) skipped: file size differs from the row's bytes (e.g. clips/cut/t000_00.mp4)" in err
    assert "clips/failed" not in err  # a failed row is not a warning of training: the crop run reported it


def test_subject_from_track_a_column_and_an_unknown_name(crop_run):
    out, rows = crop_run
    tracks = open_source(out, 56, 10, subject_from="track")
    assert tracks.subjects() == sorted(f"{_video_subject(r)}/t{r['track_id']:03d}" for r in rows)
    assert len(tracks.subjects()) == 4
    by_id = open_source(out, 56, 10, subject_from="source_id")
    assert by_id.subjects() == sorted({r["source_id"] for r in rows})
    with pytest.raises(ConfigError) as err:
        open_source(out, 56, 10, subject_from="speaker")
    msg = err.value.one_line()
    assert "data.subject_from=speaker" in msg and "no such column" in msg
    assert "source_id" in msg and "track_id" in msg and "n_frames" in msg and "crop_boxes" not in msg


def test_clips_too_short_for_the_window_are_counted_and_one_subject_warns(crop_run, fx_log):
    out, rows = crop_run
    fx_log()
    src = open_source(out, 56, 40)  # the pair video's clips have 30 frames
    assert sorted(c.key for c in src.clips) == sorted(r["clip"] for r in rows if r["n_frames"] == 75)
    two_faces = _video_subject(_rows_of(rows, "two_faces")[0])
    assert src.subjects() == [two_faces]
    check_subjects(src.subjects(), "auto")
    err = fx_log()
    assert "2 ok row(s) skipped: shorter than 40 frames (e.g. clips/pair-" in err
    assert f"the dataset has one subject ('{two_faces}'" in err and "subject_from=track" in err
    check_subjects(open_source(out, 56, 10).subjects())
    assert "one subject" not in fx_log()
    # at another training rate the count comes from the row's span: 3.0 s x 12.5 fps, 1.2 s x 12.5 fps
    slow = open_source(out, 56, 10, fps=12.5)
    assert sorted(c.frames for c in slow.clips) == [15, 15, 37, 37] and {c.fps for c in slow.clips} == {12.5}


def test_a_crop_run_that_did_not_finish_is_read_from_its_parts(crop_copy, fx_log):
    root, rows = crop_copy
    (root / "manifest.parquet").unlink()
    fx_log()
    src = open_source(root, 56, 10)
    assert sorted(c.key for c in src.clips) == sorted(r["clip"] for r in rows)
    assert "no manifest.parquet (the crop run did not finish); reading its 2 finished part(s)" in fx_log()


def test_fx_train_joint_on_a_crop_folder(crop_copy, tmp_path, capsys):
    root, rows = crop_copy
    (root / "clips" / "failed").mkdir()
    shutil.copy(root / rows[0]["clip"], root / "clips" / "failed" / "t000_00.mp4")
    _write_manifest(root, rows + [{**rows[0], "status": "error", "clip": "clips/failed/t000_00.mp4"}])
    cache = tmp_path / "tokens"
    args = ["train", "joint", *TINY, f"data.path={root}", "trainer.max_steps=3", "--cache-tokens", str(cache)]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    subjects = json.loads((tmp_path / "run" / "subjects.json").read_text())["subjects"]
    assert subjects == sorted({_video_subject(r) for r in rows}) and len(subjects) == 2
    # the clips it tokenized are manifest clips, never the failed row's file
    used = {p.stem.rsplit(".", 1)[0].replace("__", "/") for p in cache.rglob("*.npy")}  # <key>.<stamp>.npy
    assert used and used <= {r["clip"] for r in rows}
    # one subject per face track, asked for on the command line
    assert main([*args[:-2], "--subject-from", "track", "trainer.max_steps=1", "--out", str(tmp_path / "t")]) == 0
    capsys.readouterr()
    subjects = json.loads((tmp_path / "t" / "subjects.json").read_text())["subjects"]
    assert subjects == sorted(f"{_video_subject(r)}/t{r['track_id']:03d}" for r in rows)
    # a column the manifest does not have: one line, exit code 2, no traceback
    assert main([*args[:-2], "data.subject_from=speaker", "--out", str(tmp_path / "x")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "data.subject_from=speaker" in err and "track_id" in err and "Traceback" not in err


def test_fx_train_joint_warns_when_the_crop_folder_holds_one_subject(crop_copy, tmp_path, capsys):
    root, rows = crop_copy
    _write_manifest(root, _rows_of(rows, "two_faces"))  # only the 3 s video (two people)
    args = ["train", "joint", *TINY, f"data.path={root}", "trainer.max_steps=1", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    err = " ".join(capsys.readouterr().err.split())  # rich wraps stderr lines
    assert "the dataset has one subject" in err and "data.subject_from=track" in err
    only = [_video_subject(_rows_of(rows, "two_faces")[0])]
    assert json.loads((tmp_path / "run" / "subjects.json").read_text())["subjects"] == only


def test_fx_clip_shards_take_the_subject_from_the_source_or_a_subject_field(crop_run, tmp_path):
    from faceexpr_cli.dataset import DatasetWriter

    out, rows = crop_run
    root = tmp_path / "shards"
    with DatasetWriter(root, max_count=2) as w:
        for i, r in enumerate(rows):
            meta = {"source": r["source"], "fps": 25.0, "frames": r["n_frames"], "duration": r["n_frames"] / 25,
                    "subject": {"speaker": f"spk{i % 2}"}}
            w.add_sample(f"clip{i}", (out / r["clip"]).read_bytes(), meta, meta)
    src = open_source(root, 56, 10)
    assert isinstance(src, ShardClips)
    assert src.subjects() == sorted({_video_subject(r) for r in rows})  # the same names as the crop folder's
    assert open_source(root, 56, 10, subject_from="speaker").subjects() == ["spk0", "spk1"]
    long_only = [_video_subject(_rows_of(rows, "two_faces")[0])]
    assert open_source(root, 56, 40).subjects() == long_only  # short clips leave the table
    with pytest.raises(ConfigError, match="records 'track_id'"):
        open_source(root, 56, 10, subject_from="track")
    with pytest.raises(DataError, match="no clip has 80 frames"):
        open_source(root, 56, 80)  # would otherwise stream forever without yielding a batch
    batch = next(src.stream(2, seed=0, rank=0, world=1, start=0))
    assert set(batch.subjects) <= set(src.subjects()) and batch.frames.shape == (2, 10, 56, 56, 3)
