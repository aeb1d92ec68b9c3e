"""Atomic staging (where the stage goes, the order of the moves, the failed report) and the per-part progress rows,
with a recording fake bar."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from faceexpr_cli.onnx import staging
from faceexpr_cli.onnx.progress import PartProgress
from faceexpr_cli.onnx.staging import FAILED_REPORT, REPORT, staging_dir, swap_in, write_failed, write_json


def test_the_stage_sits_beside_the_output_and_is_removed_afterwards(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with staging_dir(out) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".out.fx-export-") and stage.is_dir()
        (stage / "f").write_text("x")
    assert not stage.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError), staging_dir(out) as stage:
        raise RuntimeError
    assert not stage.exists()


def test_the_stage_goes_inside_the_output_when_its_parent_is_not_writable(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    real = tempfile.mkdtemp

    def mkdtemp(prefix, dir):
        if dir == tmp_path:
            raise PermissionError("read-only")
        return real(prefix=prefix, dir=dir)

    monkeypatch.setattr(staging.tempfile, "mkdtemp", mkdtemp)
    with staging_dir(out) as stage:
        assert stage.parent == out and stage.name.startswith(".fx-export-")
    assert list(out.iterdir()) == []


def test_write_json_is_indented_takes_any_value_and_leaves_no_temporary(tmp_path):
    from pathlib import Path

    write_json(tmp_path / "r.json", {"a": [1], "p": Path("x/y")})
    text = (tmp_path / "r.json").read_text(encoding="utf-8")
    assert text == '{\n  "a": [\n    1\n  ],\n  "p": "x/y"\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_swap_in_moves_every_file_with_the_report_last_and_drops_an_old_failure(tmp_path, monkeypatch):
    stage, out = tmp_path / "stage", tmp_path / "out"
    for rel in (REPORT, "a.onnx", "sub/card.yaml", "z.onnx"):
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_text(rel)
    out.mkdir()
    (out / FAILED_REPORT).write_text("old")
    (out / "keep.txt").write_text("k")
    moves = []
    real = os.replace
    monkeypatch.setattr(staging.os, "replace", lambda a, b: moves.append(os.path.relpath(b, out)) or real(a, b))
    swap_in(stage, out)
    assert moves == ["a.onnx", "sub/card.yaml", "z.onnx", REPORT]
    assert (out / "sub" / "card.yaml").read_text() == "sub/card.yaml" and (out / REPORT).read_text() == REPORT
    assert not (out / FAILED_REPORT).exists() and (out / "keep.txt").read_text() == "k"
    swap_in(stage, out)  # nothing left to move, no failure report: no error


def test_write_failed_keeps_the_report_beside_the_good_export(tmp_path):
    (tmp_path / REPORT).write_text("good")
    path = write_failed(tmp_path, {"ok": False})
    assert path == tmp_path / "report.failed.json" and json.loads(path.read_text()) == {"ok": False}
    assert (tmp_path / REPORT).read_text() == "good"


class Bar:
    def __init__(self):
        self.calls = []

    def add_task(self, description, total):
        self.calls.append(("add", description, total))
        return len(self.calls)

    def update(self, task, **kw):
        self.calls.append(("update", task, kw))


def test_part_progress_rows():
    bar = Bar()
    rows = PartProgress(bar)
    rows.stage("c", "p", "PyTorch", steps=5)
    rows.stage("c", "p", "exporting")
    rows.stage("c", "p", "fp16", advance=2)
    rows.done("c", "p", True)
    rows.stage("c", "q", "PyTorch")
    rows.done("c", "q", False)
    assert bar.calls == [
        ("add", "c.p: PyTorch", 5),
        ("update", 1, {"description": "c.p: exporting", "advance": 1}),
        ("update", 1, {"description": "c.p: fp16", "advance": 2}),
        ("update", 1, {"description": "c.p: exported and checked", "completed": 5}),
        ("add", "c.q: PyTorch", 1),
        ("update", 5, {"description": "c.q: FAILED", "completed": 1}),
    ]


def test_part_progress_hidden_rows_and_no_bar():
    bar = Bar()
    rows = PartProgress(bar)
    rows.stage("c", "hidden", "PyTorch", shown=False)  # a model only run to feed others gets no row
    rows.done("c", "hidden", True)  # nor a final state
    assert bar.calls == [] and rows.rows == {}
    rows.stage("c", "p", "PyTorch")
    rows.stage("c", "p", "checking", shown=False)  # an existing row is updated whatever shown says
    assert bar.calls[-1] == ("update", 1, {"description": "c.p: checking", "advance": 1})
    silent = PartProgress(None)
    silent.stage("c", "p", "PyTorch")
    silent.done("c", "p", True)
    assert silent.rows == {}
