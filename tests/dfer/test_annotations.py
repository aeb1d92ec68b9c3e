"""Every annotation format parses (detected by content), paths resolve relative to the file, label maps are data,
and a bad line stops with one error naming the file and the line."""

from __future__ import annotations

import json

import pytest

from faceexpr_cli.dfer.annotations import read_annotations
from faceexpr_cli.dfer.labels import load_label_map, read_label_map, write_label_map
from faceexpr_cli.errors import DataError, UnknownNameError

DFEW = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


@pytest.fixture()
def root(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "clips" / name).write_bytes(b"x")
    (tmp_path / "frames" / "00012").mkdir(parents=True)
    (tmp_path / "frames" / "00007").mkdir(parents=True)
    return tmp_path


def test_mae_dfer_format(root):
    f = root / "train.txt"
    f.write_text("clips/a.mp4 3\nclips/b.mp4 0\n\n")
    ann = read_annotations(f, DFEW)
    assert ann.format == "mae-dfer" and ann.labels() == [3, 0]
    assert ann.entries[0].path == root / "clips" / "a.mp4" and ann.entries[1].line == 2


def test_dfer_clip_format_with_absolute_paths(root):
    f = root / "sub" / "test.txt"
    f.parent.mkdir()
    f.write_text(f"{root / 'frames' / '00012'} 48 6\n{root / 'clips' / 'b.mp4'} 30 1\n")
    ann = read_annotations(f, DFEW)
    assert ann.format == "dfer-clip" and ann.labels() == [6, 1] and [e.frames for e in ann.entries] == [48, 30]


def test_csv_with_header_names_and_regression_columns(root):
    f = root / "gaze.csv"
    f.write_text("path,label,pitch,yaw\nclips/a.mp4,Angry,0.1,-0.2\nclips/b.mp4,sad,0.3,0.4\n")
    ann = read_annotations(f, DFEW)
    assert ann.format == "table" and ann.labels() == [3, 1] and ann.regression == ["pitch", "yaw"]
    assert ann.entries[0].targets == (0.1, -0.2)


def test_parquet_table(root):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = root / "ann.parquet"
    pq.write_table(pa.table({"path": ["clips/a.mp4", "clips/b.mp4"], "label": [5, 2]}), f)
    ann = read_annotations(f, DFEW)
    assert ann.format == "table" and ann.labels() == [5, 2]


def test_dfew_split_file_labels_1_to_7_and_zero_padded_folders(root):
    f = root / "frames" / "set_1.csv"
    f.write_text("video_name,label\n12,1\n7,7\n")
    ann = read_annotations(f, DFEW)
    assert ann.format == "dfew" and ann.labels() == [0, 6]
    assert ann.entries[0].path == root / "frames" / "00012"
    bad = root / "frames" / "set_2.csv"
    bad.write_text("video_name,label\n12,0\n")
    with pytest.raises(DataError, match=r"set_2.csv:2: label 0 \(label - 1 = -1\) is outside 0..6"):
        read_annotations(bad, DFEW)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("clips/a.mp4 3\nclips/b.mp4\n", 2, "1 fields, the file's first line has 2"),
    ("clips/a.mp4 3\nclips/missing.mp4 1\n", 2, "clip 'clips/missing.mp4' not found"),
    ("clips/a.mp4 9\n", 1, "label 9 is outside 0..6"),
    ("clips/a.mp4 x 2\n", 1, "num_frames 'x' is not an integer"),
    ("clips/a.mp4 cheerful\n", 1, "label 'cheerful' is neither a class index nor one of"),
    ("path,label,yaw\nclips/a.mp4,1,nan\n", 2, "yaw is nan, not a finite number"),
    ("path,label\nclips/a.mp4,1,extra\n", 2, "3 fields, the header has 2"),
    ("a b c d\n", 1, "4 fields; expected"),
])
def test_a_bad_line_is_one_error_naming_file_and_line(root, text, line, message):
    f = root / "bad.txt"
    f.write_text(text)
    with pytest.raises(DataError) as exc:
        read_annotations(f, DFEW)
    assert str(exc.value.message).startswith(f"{f}:{line}: ") and message in exc.value.message
    assert "\n" not in exc.value.message


def test_label_maps_are_data(tmp_path):
    assert load_label_map("dfew") == DFEW
    assert load_label_map("common")[7] == "ambiguous" and load_label_map("common")[0] == "angry"
    mae, clip = load_label_map("mafw-mae-dfer"), load_label_map("mafw-dfer-clip")
    assert len(mae) == len(clip) == 11 and sorted(mae) == sorted(clip) and mae[0] == "anger" and clip[0] == "happiness"
    f = tmp_path / "map.yaml"
    f.write_text("{calm: 1, tense: 0}\n")
    assert load_label_map(f) == ["tense", "calm"]
    write_label_map(tmp_path / "labels.json", mae, "mafw-mae-dfer")
    assert read_label_map(tmp_path / "labels.json") == mae
    assert json.loads((tmp_path / "labels.json").read_text())["name"] == "mafw-mae-dfer"
    with pytest.raises(UnknownNameError):
        load_label_map("nope")
