"""Batches: every input gets a status row, a bad file does not stop the run, manifests carry labels, resume."""

from __future__ import annotations

import json

import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.errors import BatchFailures
from faceexpr_cli.extract import ExtractOptions, extract_features, read_index
from faceexpr_cli.extract.inputs import expand, label_id


@pytest.fixture(scope="module")
def folder_run(batch_dir, tiny_export, tmp_path_factory):
    """The batch folder through the ONNX backend once (stride 2 keeps it quick)."""
    out = tmp_path_factory.mktemp("batch_out")
    res = extract_features([batch_dir], tiny_export, out, ExtractOptions(stride=2), raise_on_failure=False)
    return out, res


def test_each_input_gets_a_status_and_the_run_goes_on(folder_run, batch_dir, tiny_export, tmp_path):
    out, res = folder_run
    status = {r["source"].rsplit("/", 1)[-1]: r for r in res.rows}
    assert {k: r["status"] for k, r in status.items()} == {
        "good.mp4": "ok", "no_face.mp4": "no_face", "corrupt.mp4": "error", "notes.txt": "skipped"}
    assert "corrupt.mp4" in status["corrupt.mp4"]["error"]
    nf = status["no_face.mp4"]
    doc = json.loads((out / nf["json"]).read_text())  # the face-less video is still described, frame by frame
    assert doc["traj"] == [] and doc["no_face_frames"] == list(range(0, 20, 2)) and nf["npz"] is None
    assert status["good.mp4"]["tokens"] == 50 and status["good.mp4"]["trajectories"] == 1
    assert res.stats["failed"] == 1 and res.stats["videos"] == {"ok": 1, "no_face": 1, "error": 1, "skipped": 1}
    assert len(read_index(out / "features.parquet")) == 4
    with pytest.raises(BatchFailures, match="1 of 4 items failed"):
        extract_features([batch_dir], tiny_export, tmp_path, ExtractOptions(stride=50))
    assert (tmp_path / "features.parquet").is_file() and (tmp_path / "stats.json").is_file()


def test_resume_skips_finished_videos_and_retries_errors(folder_run, batch_dir, tiny_export, capsys):
    out, first = folder_run
    good = next(r for r in first.rows if r["source"].endswith("good.mp4"))
    stamp = (out / good["npz"]).stat().st_mtime_ns
    again = extract_features([batch_dir], tiny_export, out, ExtractOptions(stride=2), raise_on_failure=False)
    assert again.stats["resumed_skipped"] == 3  # ok, no_face and skipped rows are final; the error is retried
    assert (out / good["npz"]).stat().st_mtime_ns == stamp
    assert again.stats["videos"] == first.stats["videos"]
    other = extract_features([batch_dir], tiny_export, out, ExtractOptions(stride=5), raise_on_failure=False)
    assert other.stats["resumed_skipped"] == 0  # other settings: the outputs are redone
    assert next(r for r in other.rows if r["source"].endswith("good.mp4"))["sampled_frames"] == 20


def test_csv_manifest_with_labels_through_the_cli(batch_dir, tiny_run, tmp_path, capsys):
    manifest = tmp_path / "videos.csv"
    manifest.write_text(f"video_path,label,speaker\n{batch_dir / 'good.mp4'},Happy,s1\nmissing.mp4,sad,s2\n"
                        f"{batch_dir / 'no_face.mp4'},4,s3\n")
    code = main(["extract-feats", str(manifest), "--model", str(tiny_run), "--out", str(tmp_path / "o"),
                 "--stride", "5", "--subject", "grace_hopper", "--json"])
    assert code == 1  # the missing video is an error row; the others are done
    summary = json.loads(capsys.readouterr().out)
    rows = {r["source"].rsplit("/", 1)[-1]: r for r in summary["rows"]}
    assert {k: (r["status"], r["label"]) for k, r in rows.items()} == {
        "good.mp4": ("ok", "Happy"), "missing.mp4": ("error", "sad"), "no_face.mp4": ("no_face", "4")}
    assert "missing.mp4, which does not exist" in rows["missing.mp4"]["error"]
    doc = json.loads((tmp_path / "o" / rows["good.mp4"]["json"]).read_text())
    assert doc["label"] == "Happy" and doc["label_id"] == 3 and doc["fields"] == {"speaker": "s1"}
    assert doc["model"]["backend"] == "torch" and doc["model"]["subject"] == "grace_hopper"
    assert doc["model"]["subject_row"] == 1


def test_inputs_dedupe_and_map_labels(batch_dir, tmp_path):
    tsv = tmp_path / "list.tsv"
    tsv.write_text(f"video\tlabel\n{batch_dir / 'good.mp4'}\thappiness\n{batch_dir / 'good.mp4'}\tsad\n")
    items = expand([tsv, batch_dir / "good.mp4"])
    assert len(items) == 1 and items[0].label == "happiness" and items[0].label_id == 3
    assert [label_id(x) for x in ("Angry", "SURPRISED", "contempt", "7", "meh", None)] == [0, 6, 8, 7, None, None]
