"""The on-the-fly export cache: fingerprints derived by hand, what the key covers and what it ignores, when an
entry counts as complete, folder names, and cached_export's moves with a fake exporter (no ONNX export here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from faceexpr_cli.config.cards import ModelCard, OnnxPart, OnnxSpec, TensorSpec
from faceexpr_cli.onnx import cache
from faceexpr_cli.onnx.export import ExportOptions, ModelSource, ParityError
from faceexpr_cli.onnx.staging import FAILED_REPORT


def _card(name="toy/card@1") -> ModelCard:
    part = OnnxPart(name="p", inputs=[TensorSpec(name="x", shape=["batch", 2])],
                    outputs=[TensorSpec(name="y", shape=["batch", 2])])
    return ModelCard(name=name, builder="b", description="d", task="t", licence="MIT", preset={"dim": 2},
                     tiny={"dim": 1}, onnx=OnnxSpec(parts=[part]))


def test_cache_root_is_under_fx_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FX_HOME", str(tmp_path))
    assert cache.cache_root() == tmp_path / "cache" / "onnx"


def test_state_fingerprint_hashes_names_dtypes_shapes_and_bytes():
    lin = torch.nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.fill_(-2.0)
    lin.register_buffer("empty", torch.zeros(0))
    h = hashlib.sha256()
    h.update(b"weight|torch.float32|(1, 1)|" + torch.tensor([1.0]).numpy().tobytes())
    h.update(b"bias|torch.float32|(1,)|" + torch.tensor([-2.0]).numpy().tobytes())
    h.update(b"empty|torch.float32|(0,)|")  # no bytes for an empty tensor
    assert cache.state_fingerprint(lin) == h.hexdigest()
    bf = torch.nn.Linear(1, 1).to(torch.bfloat16)
    assert len(cache.state_fingerprint(bf)) == 64  # a dtype numpy lacks
    with torch.no_grad():
        lin.bias.fill_(-2.5)
    assert cache.state_fingerprint(lin) != h.hexdigest()


def test_file_fingerprint_is_the_sha256_of_the_bytes_across_blocks(tmp_path):
    data = bytes(range(256)) * ((1 << 20) // 256) + b"tail!"  # past one 1 MiB block
    (tmp_path / "w").write_bytes(data)
    assert cache.file_fingerprint(tmp_path / "w") == hashlib.sha256(data).hexdigest()
    (tmp_path / "e").write_bytes(b"")
    assert cache.file_fingerprint(str(tmp_path / "e")) == hashlib.sha256(b"").hexdigest()


def test_the_key_covers_what_shapes_the_graph_and_nothing_else(tmp_path):
    model = torch.nn.Linear(2, 2)
    src = ModelSource(_card(), model=model)
    base = ExportOptions()
    key = cache.cache_key(src, base)
    assert len(key) == 20 and int(key, 16) >= 0 and cache.cache_key(src, ExportOptions()) == key
    changed = {"opset": 19, "dynamic_batch": False, "fp16": True, "simplify": False, "optimize": False, "batch": 3,
               "parts": ["p"], "tiny": True}
    for field, value in changed.items():
        assert cache.cache_key(src, ExportOptions(**{field: value})) != key, field
    same = {"latency_runs": 1, "seed": 5, "sample_check": False, "external_over_mb": 1.0}
    for field, value in same.items():
        assert cache.cache_key(src, ExportOptions(**{field: value})) == key, field
    assert cache.cache_key(ModelSource(_card(), model=model, derive_shapes=True), base) != key
    assert cache.cache_key(ModelSource(_card("other"), model=model), base) != key
    assert cache.cache_key(ModelSource(_card(), model=model, folder="sub"), base) == key  # the folder is not keyed
    w = tmp_path / "w.bin"
    w.write_bytes(b"abc")
    by_file = cache.cache_key(ModelSource(_card(), weights=w), base)
    assert by_file != key and cache.cache_key(ModelSource(_card(), model=model, weights=w), base) == key
    w.write_bytes(b"abd")
    assert cache.cache_key(ModelSource(_card(), weights=w), base) != by_file
    with pytest.raises(Exception, match=r"card 'toy/card@1': a cached export needs the weights it is keyed by") as info:
        cache.cache_key(ModelSource(_card()), base)
    assert info.value.hint == "pass ModelSource(model=...) or ModelSource(weights=...)"


def _entry(folder: Path, report: dict | str | None, files=()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f).parent.mkdir(parents=True, exist_ok=True)
        (folder / f).write_text("g")
    if report is not None:
        (folder / "report.json").write_text(report if isinstance(report, str) else json.dumps(report))
    return folder


def _report(parts, folder="sub", ok=True):
    return {"ok": ok, "models": [{"folder": folder, "parts": parts}]}


def test_is_complete(tmp_path):
    good = _report([{"file": "a.onnx", "external_data": "a.onnx.data"}, {"file": "b.onnx"}])
    assert cache.is_complete(_entry(tmp_path / "1", good, ["sub/a.onnx", "sub/a.onnx.data", "sub/b.onnx"]))
    assert not cache.is_complete(_entry(tmp_path / "2", good, ["sub/a.onnx", "sub/b.onnx"]))  # no data file
    assert not cache.is_complete(_entry(tmp_path / "3", good, ["sub/a.onnx", "sub/a.onnx.data"]))
    assert not cache.is_complete(_entry(tmp_path / "4", good, ["a.onnx", "a.onnx.data", "b.onnx"]))  # not in sub
    assert not cache.is_complete(_entry(tmp_path / "5", None))
    assert not cache.is_complete(_entry(tmp_path / "6", "{not json"))
    assert not cache.is_complete(_entry(tmp_path / "7", _report([{"file": "b.onnx"}], ok=False), ["sub/b.onnx"]))
    assert not cache.is_complete(_entry(tmp_path / "8", {"ok": True, "models": []}))
    assert not cache.is_complete(_entry(tmp_path / "9", _report([{"file": None}])))
    no_folder = {"ok": True, "models": [{"parts": [{"file": "b.onnx"}]}]}
    assert cache.is_complete(_entry(tmp_path / "10", no_folder, ["b.onnx"]))  # no folder: the entry itself
    assert cache.is_complete(_entry(tmp_path / "11", {"ok": True, "models": [{"folder": "."}]}))  # no parts listed


def test_slug():
    assert cache._slug("toy/card@1") == "toy_card_1"
    assert cache._slug("..hidden name") == "hidden_name"
    assert cache._slug("...") == "model" and cache._slug("") == "model"
    assert cache._slug("a" * 70) == "a" * 60
    assert cache._slug("ok-name_1.2") == "ok-name_1.2"


class FakeExport:
    """export_models as the cache calls it: records the call and writes an entry (or a failure) into ``out``."""

    def __init__(self, ok=True):
        self.ok = ok
        self.calls = []

    def __call__(self, sources, out, opts, source_label, raise_on_failure):
        self.calls.append({"sources": sources, "out": Path(out), "opts": opts, "label": source_label,
                           "raise": raise_on_failure})
        report = {"ok": self.ok, "models": [{"card": "c", "folder": ".", "parts": [
            {"name": "p", "file": "p.onnx", "error": None if self.ok else "it failed"}]}]}
        if self.ok:
            (Path(out) / "p.onnx").write_text("graph")
            (Path(out) / "report.json").write_text(json.dumps(report))
        else:
            (Path(out) / FAILED_REPORT).write_text(json.dumps(report))
        return report


def test_cached_export_exports_once_into_a_named_entry(tmp_path, monkeypatch):
    fake = FakeExport()
    monkeypatch.setattr(cache, "export_models", fake)
    monkeypatch.setenv("FX_HOME", str(tmp_path / "home"))
    model = torch.nn.Linear(2, 2)
    src = ModelSource(_card(), model=model, folder="sub")
    final = cache.cached_export(src)  # default options and root
    key = cache.cache_key(ModelSource(_card(), model=model), ExportOptions(latency_runs=1))
    assert final == tmp_path / "home" / "cache" / "onnx" / f"toy_card_1-{key}"
    (call,) = fake.calls
    assert call["opts"] == ExportOptions(latency_runs=1) and call["raise"] is False
    assert call["label"] == f"cache {final.name}" and call["sources"][0].folder == ""  # one entry, no sub-folder
    assert call["out"].parent == final.parent and call["out"].name.startswith(f".{final.name}-")
    assert (final / "p.onnx").read_text() == "graph" and sorted(p.name for p in final.parent.iterdir()) == [final.name]
    assert cache.cached_export(src) == final and len(fake.calls) == 1  # a hit
    opts = ExportOptions(fp16=True)
    other = cache.cached_export(src, opts, root=tmp_path / "r")
    assert other.parent == tmp_path / "r" and fake.calls[-1]["opts"] is opts


def test_a_cache_hit_is_logged_with_the_card_and_the_entry(tmp_path, monkeypatch, caplog):
    import logging

    monkeypatch.setattr(cache, "export_models", FakeExport())
    src = ModelSource(_card(), model=torch.nn.Linear(2, 2))
    final = cache.cached_export(src, root=tmp_path)
    log = logging.getLogger("fx")
    log.addHandler(caplog.handler)
    try:
        caplog.set_level(logging.DEBUG, logger="fx")
        caplog.clear()
        assert cache.cached_export(src, root=tmp_path) == final
    finally:
        log.removeHandler(caplog.handler)
    assert {r.getMessage() for r in caplog.records if "from the cache" in r.getMessage()} == {
        f"ONNX graphs of {src.card.name} from the cache: {final}"}


def test_a_broken_entry_is_replaced_and_a_finished_rival_is_kept(tmp_path, monkeypatch):
    fake = FakeExport()
    monkeypatch.setattr(cache, "export_models", fake)
    src = ModelSource(_card(), model=torch.nn.Linear(2, 2))
    final = cache.cached_export(src, root=tmp_path)
    (final / "p.onnx").unlink()
    (final / "stale.txt").write_text("x")
    assert cache.cached_export(src, root=tmp_path) == final
    assert sorted(p.name for p in final.iterdir()) == ["p.onnx", "report.json"] and len(fake.calls) == 2

    def rival(sources, out, opts, source_label, raise_on_failure):  # another process finishes first
        report = fake(sources, out, opts, source_label, raise_on_failure)
        _entry(final, {"ok": True, "models": [{"folder": ".", "parts": [{"file": "p.onnx"}]}]}, ["p.onnx", "mine"])
        return report

    (final / "p.onnx").unlink()
    monkeypatch.setattr(cache, "export_models", rival)
    monkeypatch.setattr(cache, "is_complete", lambda f, real=cache.is_complete: real(f) and (f / "mine").exists())
    assert cache.cached_export(src, root=tmp_path) == final
    assert (final / "mine").exists() and sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_a_failed_export_keeps_its_report_beside_the_cache_and_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "export_models", FakeExport(ok=False))
    src = ModelSource(_card(), model=torch.nn.Linear(2, 2))
    with pytest.raises(ParityError, match=r"^c\.p: it failed$") as info:
        cache.cached_export(src, root=tmp_path)
    (failed,) = tmp_path.iterdir()
    assert failed.name.endswith(".failed.json") and failed.name.startswith("toy_card_1-")
    assert info.value.hint == f"see {failed}"
    assert json.loads(failed.read_text())["ok"] is False


def test_a_rename_that_fails_for_another_reason_is_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "export_models", FakeExport())

    def refuse(a, b):
        raise PermissionError("no")

    monkeypatch.setattr(cache.os, "rename", refuse)
    with pytest.raises(PermissionError):
        cache.cached_export(ModelSource(_card(), model=torch.nn.Linear(2, 2)), root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone


def test_cached_predictors_default_to_the_cpu(tmp_path, monkeypatch):
    from faceexpr_cli.onnx import predictor

    seen = {}
    monkeypatch.setattr(cache, "export_models", FakeExport())
    monkeypatch.setattr(predictor, "load_predictors", lambda folder, config: seen.update(folder=folder,
                                                                                        config=config) or {"p": 1})
    parts, folder = cache.cached_predictors(ModelSource(_card(), model=torch.nn.Linear(2, 2)), root=tmp_path)
    assert parts == {"p": 1} and seen["folder"] == folder and seen["config"].device == "cpu"
