"""Crop-folder rows as training clips, on hand-written manifests (no video is decoded: only rows and file sizes)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from faceexpr_cli.errors import ConfigError, DataError
from faceexpr_cli.train import crop_folder as CF


def test_is_crop_folder_and_its_root(tmp_path):
    assert not CF.is_crop_folder(tmp_path)
    (tmp_path / "manifest.parquet").write_bytes(b"")
    assert CF.is_crop_folder(tmp_path) and CF.is_crop_folder(tmp_path / "manifest.parquet")
    other = tmp_path / "other.parquet"
    other.write_bytes(b"")
    assert not CF.is_crop_folder(other)
    parts = tmp_path / "unfinished"
    (parts / "manifest" / "parts").mkdir(parents=True)
    assert CF.is_crop_folder(parts)
    assert not CF.is_crop_folder(tmp_path / "missing")
    assert CF.crop_root(tmp_path / "manifest.parquet") == tmp_path and CF.crop_root(parts) == parts


def test_frames_at_the_stored_rate():
    assert CF._frames({"n_frames": 30, "fps": 25}, None) == (30, 25.0)
    assert CF._frames({"n_frames": 30, "fps": 0}, None) is None
    assert CF._frames({"n_frames": None, "fps": 25}, None) is None
    assert CF._frames({"n_frames": 30}, None) is None
    assert CF._frames({"n_frames": 30, "fps": float("nan")}, None) is None


def test_frames_at_another_rate_from_the_duration():
    # 1.16 s x 25 fps is 28.999999999999996 in floating point: the epsilon makes it the 29 frames it is
    assert CF._frames({"duration": 1.16, "n_frames": 1, "fps": 1}, 25.0) == (29, 25.0)
    assert CF._frames({"duration": 1.19, "fps": 25}, 10.0) == (11, 10.0)
    # no duration: n / rate seconds -> 30 / 25 = 1.2 s at 10 fps = 12 frames
    assert CF._frames({"n_frames": 30, "fps": 25.0}, 10.0) == (12, 10.0)
    assert CF._frames({"n_frames": 30, "fps": 0}, 10.0) is None
    assert CF._frames({"n_frames": None, "fps": 25}, 10.0) is None
    assert CF._frames({"duration": float("nan"), "n_frames": 30, "fps": 30.0}, 10.0) == (10, 10.0)


def _clip(root: Path, name: str, size: int = 10) -> str:
    path = root / "clips" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return f"clips/{name}"


def test_why_unusable_reasons_in_order(tmp_path):
    clip = _clip(tmp_path, "a.mp4", 10)
    ok = {"status": "ok", "clip": clip, "n_frames": 10, "fps": 25.0, "bytes": 10}
    why = CF._why_unusable
    assert why(tmp_path, ok, 10, None) is None  # exactly the window: usable
    assert why(tmp_path, ok, 11, None) == "shorter than 11 frames"
    assert why(tmp_path, {**ok, "status": "error"}, 1, None) == "status error"
    assert why(tmp_path, {**ok, "clip": ""}, 1, None) == "no clip file named"
    assert why(tmp_path, {**ok, "clip": "clips/none.mp4"}, 1, None) == "clip file missing"
    assert why(tmp_path, {**ok, "bytes": 11}, 1, None) == "file size differs from the row's bytes"
    assert why(tmp_path, {**ok, "bytes": None}, 1, None) is None  # no recorded size: not checked
    assert why(tmp_path, {**ok, "n_frames": None}, 1, None) == "no frame count"


def _manifest(root: Path, rows: list[dict]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "manifest.parquet")


def _row(clip: str | None, **more) -> dict:
    base = {"status": "ok", "clip": clip, "source": "/v/talk.mp4", "source_id": "abcdef0123", "track_id": 0,
            "n_frames": 20, "fps": 25.0, "size": 56, "has_audio": 1, "crop_boxes": [[0.0, 1.0]]}
    return {**base, **more}


def test_crop_clips_builds_clip_refs_from_the_rows(tmp_path, fx_log):
    root = tmp_path / "crop"
    a, b = _clip(root, "a.mp4"), _clip(root, "b.mp4")
    _manifest(root, [_row(a), _row(b, track_id=1, has_audio=0, n_frames=12, size=64)])
    fx_log()
    clips = CF.crop_clips(root, 56, 12, None, "track")
    assert [(c.key, c.path, c.subject, c.frames, c.fps, c.has_audio) for c in clips] == [
        (a, root / a, "talk-abcdef01/t000", 20, 25.0, True),
        (b, root / b, "talk-abcdef01/t001", 12, 25.0, False)]
    log = fx_log()
    assert "1 clip(s) are not 56x56 and are resized on the fly (e.g. clips/b.mp4 64px)" in log
    assert f"{root}: 2 clip(s) of 2 subject(s) from 2 manifest row(s)" in log
    assert [c.subject for c in CF.crop_clips(root / "manifest.parquet", 56, 12, None, "auto")] == ["talk-abcdef01"] * 2


def test_crop_clips_counts_skipped_rows_by_reason(tmp_path, fx_log):
    root = tmp_path / "crop"
    good = _clip(root, "good.mp4")
    rows = [_row(good), _row(None, status="no_face"), _row(None, status="error"), _row(None, status="error"),
            _row("clips/gone.mp4"), _row("clips/gone2.mp4"), _row(_clip(root, "short.mp4"), n_frames=3)]
    _manifest(root, rows)
    fx_log()
    clips = CF.crop_clips(root, 56, 4, None, "auto")
    assert [c.key for c in clips] == [good]
    log = fx_log()
    assert f"{root}: 3 row(s) are not clips (2 error, 1 no_face)" in log
    assert "2 ok row(s) skipped: clip file missing (e.g. clips/gone.mp4)" in log
    assert "1 ok row(s) skipped: shorter than 4 frames (e.g. clips/short.mp4)" in log
    assert "skipped: status" not in log and "resized" not in log


def test_crop_clips_with_nothing_usable_says_why(tmp_path):
    root = tmp_path / "crop"
    _manifest(root, [_row("clips/gone.mp4"), _row(None, status="error")])
    with pytest.raises(DataError) as info:
        CF.crop_clips(root, 56, 4, None, "auto")
    assert info.value.message == f"{root}: no usable clip in the crop manifest (1 clip file missing, 1 status error)"
    assert "lower data.frames" in info.value.hint
    _manifest(root, [_row(_clip(root, "a.mp4"), track_id=None)])
    with pytest.raises(ConfigError, match="data.subject_from=track: no usable clip in .*records 'track_id'"):
        CF.crop_clips(root, 56, 4, None, "track")


def test_crop_clips_subject_columns_leave_out_the_heavy_lists(tmp_path):
    root = tmp_path / "crop"
    _manifest(root, [_row(_clip(root, "a.mp4"))])
    with pytest.raises(ConfigError) as info:
        CF.crop_clips(root, 56, 4, None, "crop_boxes")
    assert "no such column" in info.value.message and "crop_boxes" not in info.value.message.split("columns:")[1]
    rows, columns = CF.read_rows(root)
    assert "crop_boxes" not in columns and "source_id" in columns and "crop_boxes" not in rows[0]


def test_read_rows_of_a_damaged_manifest_and_of_parts(tmp_path, fx_log):
    root = tmp_path / "crop"
    root.mkdir()
    (root / "manifest.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="manifest.parquet: not a readable manifest") as info:
        CF.read_rows(root)
    assert info.value.hint == "re-run fx crop on the same --out"
    (root / "manifest.parquet").unlink()
    parts = root / "manifest" / "parts"
    parts.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"clip": "b", "z": 1}]), parts / "1.parquet")
    pq.write_table(pa.Table.from_pylist([{"clip": "a", "y": 2}]), parts / "0.parquet")
    (parts / "2.parquet").write_bytes(b"half written")
    fx_log()
    rows, columns = CF.read_rows(root)
    assert [r["clip"] for r in rows] == ["a", "b"] and columns == ["clip", "y", "z"]
    log = fx_log()
    assert "no manifest.parquet (the crop run did not finish); reading its 3 finished part(s)" in log
    assert "2.parquet: unreadable manifest part left out" in log


def test_a_row_without_a_clip_is_named_by_its_source(tmp_path, fx_log):
    root = tmp_path / "crop"
    good = _clip(root, "good.mp4")
    _manifest(root, [_row(good, size=None), _row("", source="/v/lost.mp4")])
    fx_log()
    clips = CF.crop_clips(root, 56, 4, None, "auto")
    assert [c.key for c in clips] == [good]
    log = fx_log()
    assert "1 ok row(s) skipped: no clip file named (e.g. /v/lost.mp4)" in log
    assert "resized" not in log  # a row without a size is not called a resized clip


def test_open_source_reads_a_crop_folder_through_its_manifest(tmp_path):
    from faceexpr_cli.train.data import CropFolderClips, open_source

    root = tmp_path / "crop"
    a = _clip(root, "a.mp4")
    _manifest(root, [_row(a, duration=0.8)])
    src = open_source(root, 56, 4, fps=10.0, subject_from="track")
    assert type(src) is CropFolderClips and not src.streaming
    assert [(c.key, c.subject, c.frames, c.fps) for c in src.clips] == [(a, "talk-abcdef01/t000", 8, 10.0)]
