"""expand_inputs on hand-made trees and manifests: which files are work, manifest columns and paths, messages."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from faceexpr_cli.crop.inputs import MANIFEST_SUFFIXES, PATH_COLUMNS, VIDEO_SUFFIXES, Item, expand_inputs
from faceexpr_cli.errors import DataError, MissingFileError


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_item_id_is_the_first_12_hex_of_the_sha1_of_the_path():
    it = Item("/videos/talk.mp4")
    assert it.skip is None
    assert it.source_id == hashlib.sha1(b"/videos/talk.mp4").hexdigest()[:12] and len(it.source_id) == 12
    assert Item("/videos/\u00e9.mp4").source_id == hashlib.sha1("/videos/\u00e9.mp4".encode()).hexdigest()[:12]


def test_every_video_extension_in_a_directory_is_work_in_any_case(tmp_path):
    assert {".mp4", ".mov", ".mkv", ".webm", ".avi", ".ts"} <= VIDEO_SUFFIXES
    for i, suf in enumerate(sorted(VIDEO_SUFFIXES)):
        _touch(tmp_path / f"v{i:02d}{suf.upper() if i % 2 else suf}")
    items = expand_inputs([tmp_path])
    assert len(items) == len(VIDEO_SUFFIXES) and all(i.skip is None for i in items)
    assert [Path(i.source).name for i in items] == sorted(p.name for p in tmp_path.iterdir())  # stable order


def test_other_files_in_a_directory_get_a_skip_reason(tmp_path):
    _touch(tmp_path / "README")
    _touch(tmp_path / "notes.TXT")
    _touch(tmp_path / "list.csv")  # inside a directory a manifest is not read: it is just not a video
    _touch(tmp_path / ".DS_Store")
    _touch(tmp_path / "sub" / ".hidden.mp4")
    (tmp_path / "empty_dir").mkdir()
    skips = {Path(i.source).name: i.skip for i in expand_inputs([tmp_path])}
    assert skips == {"README": "not a video file (no extension)", "notes.TXT": "not a video file (.TXT)",
                     "list.csv": "not a video file (.csv)"}


def test_a_file_named_on_the_command_line_is_always_tried(tmp_path):
    f = _touch(tmp_path / "clip.bin")
    [item] = expand_inputs([f])
    assert item == Item(str(f.resolve())) and item.skip is None


def test_paths_are_absolute_and_each_source_comes_once(tmp_path, monkeypatch):
    v = _touch(tmp_path / "d" / "a.mp4")
    monkeypatch.chdir(tmp_path)
    items = expand_inputs(["d/a.mp4", tmp_path / "d", "d/../d/a.mp4"])
    assert [i.source for i in items] == [str(v.resolve())]
    monkeypatch.setenv("HOME", str(tmp_path / "d"))
    assert [i.source for i in expand_inputs(["~/a.mp4"])] == [str(v.resolve())]


def test_the_output_folder_is_left_out_of_a_directory(tmp_path):
    _touch(tmp_path / "a.mp4")
    _touch(tmp_path / "out" / "clips" / "x.mp4")
    _touch(tmp_path / "outside.mp4")  # a sibling whose name starts like the output folder's is kept
    names = [Path(i.source).name for i in expand_inputs([tmp_path], exclude=tmp_path / "out")]
    assert names == ["a.mp4", "outside.mp4"]
    assert len(expand_inputs([tmp_path])) == 3  # without exclude every file counts


def test_text_manifests_skip_comments_and_blank_lines_and_resolve_next_to_the_list(tmp_path):
    a, b = _touch(tmp_path / "v" / "a.mp4"), _touch(tmp_path / "v" / "b.mp4")
    for suffix in (".txt", ".lst"):
        lst = tmp_path / f"list{suffix}"
        lst.write_text(f"# videos\n  v/a.mp4  \n\n{b}\n   \n#v/b.mp4\n", encoding="utf-8")
        assert [i.source for i in expand_inputs([lst])] == [str(a.resolve()), str(b.resolve())]
    assert {".parquet", ".csv", ".txt", ".lst"} == MANIFEST_SUFFIXES
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "l.txt").write_text("../v/a.mp4\n")
    assert [i.source for i in expand_inputs([other / "l.txt"])] == [str(a.resolve())]


def test_manifests_with_upper_case_suffixes_are_read(tmp_path):
    a = _touch(tmp_path / "a.mp4")
    (tmp_path / "LIST.TXT").write_text("a.mp4\n")
    pd.DataFrame({"path": ["a.mp4"]}).to_parquet(tmp_path / "LIST.PARQUET")
    assert [i.source for i in expand_inputs([tmp_path / "LIST.TXT"])] == [str(a.resolve())]
    assert [i.source for i in expand_inputs([tmp_path / "LIST.PARQUET"])] == [str(a.resolve())]


def test_table_manifests_take_the_first_known_column_drop_gaps_and_repeats(tmp_path):
    a, b = _touch(tmp_path / "a.mp4"), _touch(tmp_path / "b.mp4")
    assert PATH_COLUMNS == ("path", "video", "source", "file", "video_path")
    df = pd.DataFrame({"file": ["x.mp4", "x.mp4", "x.mp4"], "source": ["a.mp4", None, "a.mp4"],
                       "video_path": ["y", "y", "y"]})
    df.to_csv(tmp_path / "m.csv", index=False)
    assert [i.source for i in expand_inputs([tmp_path / "m.csv"])] == [str(a.resolve())]  # source before file
    pd.DataFrame({"video_path": ["b.mp4"], "label": [1]}).to_parquet(tmp_path / "m.parquet")
    assert [i.source for i in expand_inputs([tmp_path / "m.parquet"])] == [str(b.resolve())]
    pd.DataFrame({"video": ["b.mp4"], "path": ["a.mp4"]}).to_csv(tmp_path / "p.csv", index=False)
    assert [i.source for i in expand_inputs([tmp_path / "p.csv"])] == [str(a.resolve())]  # path comes first


def test_manifest_errors_are_one_line_data_errors(tmp_path):
    pd.DataFrame({"name": ["a.mp4"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError) as exc:
        expand_inputs([tmp_path / "bad.csv"])
    assert exc.value.message == f"{tmp_path / 'bad.csv'}: no video column"
    assert exc.value.hint == "name one of the columns path, video, source, file, video_path"
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: cannot read the manifest \(\w+: ") as exc:
        expand_inputs([tmp_path / "broken.parquet"])
    assert exc.value.hint is None and exc.value.__cause__ is not None


def test_a_missing_input_names_the_path(tmp_path):
    with pytest.raises(MissingFileError) as exc:
        expand_inputs([tmp_path / "a.mp4", tmp_path / "nope.mp4"])
    assert exc.value.one_line() == f"input not found: {tmp_path / 'a.mp4'} (check the path)"
    assert exc.value.path == os.fspath(tmp_path / "a.mp4")
