"""`fx extract-feats` inputs (folders, files, manifests, labels) and options (bounds, resolve, the resume
fingerprint), each rule on its own (found by mutation testing)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields

import pytest

from faceexpr_cli.errors import MissingFileError, UsageError
from faceexpr_cli.extract.inputs import LABELS, VideoItem, expand, label_id
from faceexpr_cli.extract.options import ExtractOptions


# --- labels ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("angry", 0), ("Disgust", 1), (" fear ", 2), ("HAPPY", 3), ("neutral", 4), ("sad", 5), ("surprise", 6),
    ("ambiguous", 7), ("contempt", 8),
    ("anger", 0), ("disgusted", 1), ("fearful", 2), ("happiness", 3), ("sadness", 5), ("surprised", 6),
    ("calm", 4),
    ("3", 3), (" 12 ", 12), ("-2", -2), (7, 7), ("", None), ("-", None), ("joy", None), ("3.5", None), (None, None),
])
def test_label_ids(text, want):
    assert label_id(text) == want


def test_label_table_is_the_seeds():
    assert sorted(LABELS, key=LABELS.get) == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
                                              "ambiguous", "contempt"]


def test_video_item_ids():
    item = VideoItem("/data/a b.mp4", label="calm")
    assert item.source_id == hashlib.sha1(b"/data/a b.mp4").hexdigest()[:12] and item.label_id == 4
    assert VideoItem("/x.mp4").label_id is None and VideoItem("/x.mp4").fields == {}


# --- expand --------------------------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path):
    """videos/: a.mp4, B.MKV, sub/c.webm, notes.txt, README, .hidden.mp4; out/ inside it holds x.mp4."""
    v = tmp_path / "videos"
    (v / "sub").mkdir(parents=True)
    (v / "out").mkdir()
    for name in ("a.mp4", "B.MKV", "sub/c.webm", "notes.txt", "README", ".hidden.mp4", "out/x.mp4"):
        (v / name).write_bytes(b"\0")
    return tmp_path


def test_a_folder_lists_videos_and_skips_other_files(tree):
    v = tree / "videos"
    items = expand([v], exclude=v / "out")
    got = [(it.source, it.skip) for it in items]
    assert got == [(str(v / "B.MKV"), None), (str(v / "README"), "not a video file (no extension)"),
                   (str(v / "a.mp4"), None), (str(v / "notes.txt"), "not a video file (.txt)"),
                   (str(v / "sub" / "c.webm"), None)]
    assert all(it.label is None and it.fields == {} and it.error is None for it in items)
    assert str(v / "out" / "x.mp4") in [it.source for it in expand([v])]  # without exclude it is an input


def test_no_inputs_and_missing_inputs(tmp_path):
    with pytest.raises(UsageError) as exc:
        expand([])
    assert exc.value.message == "no inputs"
    assert exc.value.hint == "pass videos, folders of videos or a video_path,label CSV"
    with pytest.raises(MissingFileError, match="nothere.mp4"):
        expand([tmp_path / "nothere.mp4"])


def test_manifests_keep_labels_and_fields_and_name_missing_videos(tree, monkeypatch):
    monkeypatch.chdir(tree)
    v = tree / "videos"
    (tree / "link.mp4").symlink_to(v / "a.mp4")
    csv = tree / "LIST.CSV"  # any case of the suffix
    csv.write_text(f"video_path,label,speaker,take\n{v / 'a.mp4'},Happy,s1,2\nvideos/B.MKV,,s2,\n"
                   f"gone.mp4,sad,s3,1\nlink.mp4,4,s4,\n")
    items = expand([csv])
    assert [it.source for it in items] == [str(v / "a.mp4"), str(v / "B.MKV"), str(tree / "gone.mp4")]
    a, b, gone = items  # link.mp4 resolves to a.mp4: the first row naming it wins
    assert (a.label, a.label_id, a.fields, a.error, a.skip) == ("Happy", 3, {"speaker": "s1", "take": "2"}, None,
                                                                 None)
    assert b.label is None and b.fields == {"speaker": "s2"} and b.error is None  # empty cells are left out
    assert gone.label == "sad" and gone.error == f"{csv}: the manifest names gone.mp4, which does not exist"


def test_jsonl_and_tsv_manifests(tree):
    v = tree / "videos"
    jl = tree / "m.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in ({"video": str(v / "a.mp4"), "label": 3, "score": 0.5},
                                                    {"video": str(v / "sub" / "c.webm")})) + "\n")
    a, c = expand([jl])
    assert (a.label, a.label_id, a.fields) == ("3", 3, {"score": 0.5})  # a number label as text
    assert c.label is None and c.fields == {} and c.source == str(v / "sub" / "c.webm")
    tsv = tree / "m.tsv"
    tsv.write_text(f"video_path\tlabel\n{v / 'B.MKV'}\tfearful\n")
    (b,) = expand([tsv])
    assert b.source == str(v / "B.MKV") and b.label_id == 2


def test_a_plain_list_and_a_video_file_go_through_as_videos(tree):
    v = tree / "videos"
    lst = tree / "list.txt"
    lst.write_text("# my videos\nvideos/a.mp4\n\nvideos/notes.txt\n")
    items = expand([lst, v / "a.mp4", v / "sub" / "c.webm"])
    assert [(it.source, it.skip, it.label) for it in items] == [
        (str(v / "a.mp4"), None, None), (str(v / "notes.txt"), None, None), (str(v / "sub" / "c.webm"), None, None)]


def test_a_folder_and_a_manifest_naming_the_same_video(tree):
    v = tree / "videos"
    csv = tree / "m.csv"
    csv.write_text(f"video_path,label\n{v / 'a.mp4'},sad\n")
    first_folder = {it.source: it for it in expand([v, csv], exclude=v / "out")}
    assert first_folder[str(v / "a.mp4")].label is None
    first_manifest = expand([csv, v], exclude=v / "out")
    assert first_manifest[0].source == str(v / "a.mp4") and first_manifest[0].label == "sad"
    assert len(first_manifest) == 5


# --- options -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value, message", [
    ("stride", 0, "--stride must be a finite number >= 1, got 0"),
    ("batch_size", 0, "--batch-size must be a finite number >= 1, got 0"),
    ("detect_every", -1, "--detect-every must be a finite number >= 1, got -1"),
    ("analysis_side", 0.5, "--analysis-side must be a finite number >= 1, got 0.5"),
    ("max_pixels", 0, "--max-pixels must be a finite number >= 1, got 0"),
    ("detect_size", 0, "--detect-size must be a finite number >= 1, got 0"),
    ("margin", 10.5, "--margin must be a finite number >= 0 and <= 10, got 10.5"),
    ("margin", -0.01, "--margin must be a finite number >= 0 and <= 10, got -0.01"),
    ("smooth_hz", 0.0, "--smooth-hz must be a finite number > 0, got 0.0"),
    ("min_face", -0.5, "--min-face must be a finite number >= 0, got -0.5"),
    ("stride", float("nan"), "--stride must be a finite number >= 1, got nan"),
])
def test_out_of_range_options(name, value, message):
    with pytest.raises(UsageError) as exc:
        ExtractOptions(**{name: value}).validate()
    assert exc.value.message == message


def test_the_bounds_themselves_pass():
    opts = ExtractOptions(stride=1, batch_size=1, detect_every=1, analysis_side=1, max_pixels=1, detect_size=1,
                          margin=0.0, smooth_hz=1e-6, min_face=0.0)
    assert opts.validate() is opts
    assert ExtractOptions(margin=10.0, detect_size=None).validate().margin == 10.0


def test_resolve_orders_features_and_picks_the_backend():
    opts = ExtractOptions(features="landmarks, tokens")
    assert opts.resolve(True) is opts
    assert opts.features == ("tokens", "landmarks") and opts.face_backend == "dlib"  # no MediaPipe files cached
    assert ExtractOptions().resolve(True).features == ("tokens",)
    mesh = ExtractOptions().resolve(False)
    assert mesh.features == ("mesh", "emotion") and mesh.face_backend == "mediapipe"
    assert ExtractOptions(features="emotion").feature_names(False) == ("emotion",)
    with pytest.raises(UsageError, match="needs --model"):
        ExtractOptions(features="tokens").resolve(False)


def test_to_dict_has_every_option():
    d = ExtractOptions(stride=4, face_options={"max_side": 64}).to_dict()
    assert list(d) == [f.name for f in fields(ExtractOptions)]
    assert d["stride"] == 4 and d["face_options"] == {"max_side": 64} and d["smooth_hz"] == 3.0


def _fp(opts: ExtractOptions, model: str) -> str:
    keep = {f.name: getattr(opts, f.name) for f in fields(opts) if f.name not in ("batch_size", "max_pixels")}
    text = json.dumps({"options": keep, "model": model}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def test_fingerprint_is_a_hash_of_the_options_that_change_outputs():
    base = ExtractOptions(features=("tokens",), face_backend="dlib")
    fp = base.fingerprint("onnx:abc")
    assert fp == _fp(base, "onnx:abc") and len(fp) == 16 and int(fp, 16) >= 0
    assert base.fingerprint("onnx:abd") != fp
    same = ExtractOptions(features=("tokens",), face_backend="dlib", batch_size=3, max_pixels=77)
    assert same.fingerprint("onnx:abc") == fp  # batch size and the pixel limit change no output


@pytest.mark.parametrize("name, value", [
    ("stride", 2), ("smooth", True), ("smooth_hz", 2.5), ("margin", 0.4), ("face_backend", "opencv"),
    ("face_options", {"max_side": 64}), ("detect_every", 5), ("detect_size", 320), ("analysis_side", 360),
    ("min_face", 12.0), ("subject", 1), ("json_floats", True), ("features", ("tokens", "emotion")),
])
def test_every_other_option_changes_the_fingerprint(name, value):
    base = ExtractOptions(features=("tokens",), face_backend="dlib")
    other = ExtractOptions(**{**base.to_dict(), name: value})
    assert other.fingerprint("m") != base.fingerprint("m")


def test_the_fingerprint_takes_a_path_in_the_face_options_as_its_text():
    from pathlib import Path

    as_path = ExtractOptions(face_options={"model": Path("weights/det.onnx")}).fingerprint("m")
    as_text = ExtractOptions(face_options={"model": "weights/det.onnx"}).fingerprint("m")
    assert as_path == as_text != ExtractOptions(face_options={"model": "weights/other.onnx"}).fingerprint("m")
