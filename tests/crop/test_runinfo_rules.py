"""crop/runinfo.py on hand-made output folders: run.json, the settings check and its message, clear, partials."""

from __future__ import annotations

import json

import pytest

from faceexpr_cli.crop import manifest as mf
from faceexpr_cli.crop import runinfo
from faceexpr_cli.errors import UsageError


def _with_part(out):
    mf.write_part(out, "abc", [mf.new_row("/v.mp4", "abc", "ok")])


def test_has_results_means_a_part_or_the_combined_manifest(tmp_path):
    assert not runinfo.has_results(tmp_path)
    (tmp_path / "manifest" / "parts").mkdir(parents=True)
    (tmp_path / "manifest" / "parts" / "x.json").write_text("{}")  # not a parquet part
    assert not runinfo.has_results(tmp_path)
    _with_part(tmp_path)
    assert runinfo.has_results(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.parquet").write_bytes(b"")
    assert runinfo.has_results(other)


def test_check_settings_records_them_in_run_json(tmp_path):
    runinfo.check_settings(tmp_path, {"size": 64, "fps": None, "b": (1, 2)})
    text = (tmp_path / "run.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc == {"format": "fx-crop/1", "settings": {"b": [1, 2], "fps": None, "size": 64}}
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"  # stable, readable, one trailing newline
    assert runinfo.previous_settings(tmp_path) == {"b": [1, 2], "fps": None, "size": 64}
    assert not list(tmp_path.glob(".*.part"))


def test_same_settings_resume_and_other_settings_are_refused_naming_each_difference(tmp_path):
    _with_part(tmp_path)
    runinfo.check_settings(tmp_path, {"size": 64, "mode": "union", "fill": "blur"})
    runinfo.check_settings(tmp_path, {"fill": "blur", "mode": "union", "size": 64})  # key order does not matter
    with pytest.raises(UsageError) as exc:
        runinfo.check_settings(tmp_path, {"size": 96, "mode": "follow", "fill": "blur", "fps": 25})
    e = exc.value
    # sorted by key; a key only one side has shows null on the other
    assert e.message == (f"{tmp_path} holds crops made with other settings "
                         '(fps null -> 25; mode "union" -> "follow"; size 64 -> 96)')
    assert e.hint == "use --overwrite to replace them, or a new --out"
    assert json.loads((tmp_path / "run.json").read_text())["settings"]["size"] == 64  # not overwritten


def test_without_results_any_settings_are_taken(tmp_path):
    runinfo.check_settings(tmp_path, {"size": 64})
    runinfo.check_settings(tmp_path, {"size": 96})  # nothing cropped yet: nothing to contradict
    assert runinfo.previous_settings(tmp_path) == {"size": 96}


def test_old_folders_are_checked_against_stats_json(tmp_path):
    assert runinfo.previous_settings(tmp_path) is None
    (tmp_path / "stats.json").write_text(json.dumps({"options": {"size": 64, "max_pixels": 5}}))
    assert runinfo.previous_settings(tmp_path) == {"size": 64}  # max_pixels never shaped the output
    _with_part(tmp_path)
    runinfo.check_settings(tmp_path, {"size": 64})
    (tmp_path / "run.json").unlink()
    with pytest.raises(UsageError, match="size 64 -> 128"):
        runinfo.check_settings(tmp_path, {"size": 128})


@pytest.mark.parametrize(("name", "text"), [("run.json", "{not json"), ("run.json", '{"format": 1}'),
                                            ("run.json", "[1]"), ("stats.json", '{"options": 3}')])
def test_an_unreadable_record_is_one_usage_error(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(UsageError) as exc:
        runinfo.previous_settings(tmp_path)
    assert exc.value.message == f"{tmp_path}: cannot read run.json (the settings of the crops there)"
    assert exc.value.hint == "use --overwrite to start again, or a new --out"
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_clear_removes_the_crop_outputs_and_nothing_else(tmp_path):
    for d in ("clips/a", "manifest/parts", "mine"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("clips/a/t000_00.mp4", "manifest/parts/x.parquet", "manifest.parquet", "stats.json", "run.json",
              "notes.txt", "mine/keep.mp4", ".stats.json.1.part"):
        (tmp_path / f).write_bytes(b"x")
    runinfo.clear(tmp_path)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == ["mine", "mine/keep.mp4", "notes.txt"]
    runinfo.clear(tmp_path)  # nothing to clear: no error


def test_remove_partials_takes_only_temporary_files_of_the_run(tmp_path):
    (tmp_path / "clips" / "v").mkdir(parents=True)
    (tmp_path / "manifest" / "parts").mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    partials = [".run.json.7.part", "clips/v/.t000_00.mp4.7.part", "manifest/parts/.x.parquet.7.part"]
    kept = ["clips/v/t000_00.mp4", "x.part", "mine/.y.part", "manifest/parts/x.parquet"]
    for f in partials + kept:
        (tmp_path / f).write_bytes(b"x")
    (tmp_path / ".dir.part").mkdir()  # a folder with such a name is not a temporary file
    runinfo.remove_partials(tmp_path)
    for f in partials:
        assert not (tmp_path / f).exists(), f
    for f in kept:
        assert (tmp_path / f).exists(), f
    assert (tmp_path / ".dir.part").is_dir()


def test_write_json_replaces_atomically(tmp_path):
    runinfo.write_json(tmp_path / "a.json", {"b": 1, "a": [1]})
    runinfo.write_json(tmp_path / "a.json", {"z": 2, "a": None})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": null,\n  "z": 2\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
