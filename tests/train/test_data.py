"""Clip sources: subjects from folders and sidecars, resizing with a warning, fx clip shards, the batch stream."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from faceexpr_cli.errors import DataError
from faceexpr_cli.train.data import BatchStream, FolderClips, SubjectTable, open_source, subject_from_meta


def test_subjects_from_subfolders_and_sidecars(clip_folder, tmp_path):
    src = FolderClips(clip_folder, 56, 10)
    assert src.subjects() == ["astronaut", "grace_hopper"]
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(clip_folder / "astronaut" / "clip_00.mp4", flat / "a.mp4")
    shutil.copy(clip_folder / "grace_hopper" / "clip_00.mp4", flat / "b.mp4")
    (flat / "b.json").write_text(json.dumps({"subject_id": 17, "age": 40}))
    assert FolderClips(flat, 56, 10).subjects() == ["17", "flat"]  # sidecar id, else the folder as one subject
    assert subject_from_meta({"subject": '{"subject_id": "s9", "gender": "f"}'}) == "s9"


def test_wrong_size_is_resized_with_a_warning(clip_folder, capsys):
    from faceexpr_cli.console import setup_logging

    setup_logging(0)  # what the CLI does: warnings go to stderr through the fx handler
    src = FolderClips(clip_folder, 28, 10)
    assert src.frames(0).shape == (30, 28, 28, 3)
    assert "not 28x28 and are resized" in capsys.readouterr().err


def test_batches_depend_only_on_seed_step_and_rank(clip_folder):
    src = FolderClips(clip_folder, 56, 10)
    a = iter(BatchStream(src, 2, 10, seed=3, rank=0, start=5, workers=1))
    b = iter(BatchStream(src, 2, 10, seed=3, rank=0, start=0, workers=0))
    for _ in range(5):
        next(b)
    x, y = next(a), next(b)
    assert x.frames.shape == (2, 10, 56, 56, 3) and x.starts == y.starts and np.array_equal(x.frames, y.frames)
    other = next(iter(BatchStream(src, 2, 10, seed=3, rank=1, start=5, workers=0)))
    assert (other.starts, [c.key for c in other.clips]) != (x.starts, [c.key for c in x.clips])


def test_subject_table_capacity_and_missing():
    table = SubjectTable(["a", "b"], capacity=2)
    assert table.row("b") == 1
    with pytest.raises(DataError, match="does not fit: the model has 2 subject rows"):
        table.add("c")
    with pytest.raises(DataError, match="subject 'zz' is not in the subject table"):
        table.row("zz")


def test_fx_clip_shards_train_through_the_dataset_reader(clip_folder, tiny_recipe, tmp_path):
    from faceexpr_cli.dataset import DatasetWriter
    from faceexpr_cli.train.runner import run

    root = tmp_path / "shards"
    with DatasetWriter(root, max_count=2) as w:
        for p in sorted(clip_folder.rglob("*.mp4")):
            meta = {"subject": {"subject_id": p.parent.name}, "fps": 25.0, "frames": 30}
            w.add_sample(f"{p.parent.name}-{p.stem}", p.read_bytes(), meta, meta)
    assert open_source(root, 56, 10).streaming
    res = run(tiny_recipe(f"data.path={root}", "trainer.max_steps=2"), tmp_path / "run")
    assert res.steps == 2
    assert json.loads((tmp_path / "run" / "subjects.json").read_text())["subjects"] == ["astronaut", "grace_hopper"]
