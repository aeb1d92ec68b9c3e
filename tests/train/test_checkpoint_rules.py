"""Checkpoint files on tiny CPU modules: what each file holds, which checkpoint is picked, and every refusal's words."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from faceexpr_cli.config.cards import ModelCard
from faceexpr_cli.errors import CheckpointError, MissingFileError
from faceexpr_cli.train import checkpoint as C


def card(name: str = "lin", builder: str = "linear", **preset) -> ModelCard:
    return ModelCard(name=name, builder=builder, description="a test card", task="t", licence="MIT",
                     preset=preset or {"n": 2}, tiny={"n": 1})


def linear(n: int = 2, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(n, n)


def test_resolved_card_and_its_yaml():
    c = C.resolved_card(card(n=2, m=3), {"n": 5})
    assert c.preset == {"n": 5} and c.tiny == {} and c.name == "lin"
    data = yaml.safe_load(C.card_yaml(c))
    assert list(data)[:2] == ["name", "builder"]  # file order, not sorted
    assert data["preset"] == {"n": 5} and "input" not in data  # None fields are left out


def test_save_model_writes_weights_metadata_and_card(tmp_path):
    m = linear()
    path = tmp_path / "expression.safetensors"
    C.save_model(path, m, card(), "expression", 12)
    state, found, role = C.read_model_file(path)
    assert role == "expression" and found == card()
    assert state.keys() == m.state_dict().keys() and all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["fx_step"] == "12"
    assert yaml.safe_load((tmp_path / "expression.card.yaml").read_text())["name"] == "lin"


def test_read_model_file_without_fx_metadata_and_unreadable(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    state, found, role = C.read_model_file(path)
    assert torch.equal(state["w"], torch.ones(2)) and found is None and role is None
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match=r"bad.safetensors: not a readable safetensors file \("):
        C.read_model_file(bad)


def test_load_model_refuses_another_card_by_name(tmp_path):
    path = tmp_path / "m.safetensors"
    C.save_model(path, linear(), card("lin"), "expression", 1)
    with pytest.raises(CheckpointError) as info:
        C.load_model(path, linear(), card("other"), "predictor")
    assert info.value.message == (f"{path} holds a 'expression' model of card 'lin', but this run's predictor "
                                  "model uses card 'other'")
    assert info.value.hint == "pass a other checkpoint for predictor"
    with pytest.raises(CheckpointError, match="holds a 'expression' model of card 'lin'"):
        C.load_model(path, linear(), card("lin", builder="conv"), "expression")  # same name, other builder


def test_load_model_without_a_role_names_the_builder(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file(dict(linear().state_dict()), str(path), metadata={"fx_card": json.dumps(card().model_dump(mode="json"))})
    with pytest.raises(CheckpointError, match="holds a 'linear' model of card 'lin'"):
        C.load_model(path, linear(), card("x"), "expression")


def test_load_model_lists_at_most_three_differing_arguments(tmp_path):
    path = tmp_path / "m.safetensors"
    C.save_model(path, linear(), card(a=1, b=2, c=3, d=4, n=2), "expression", 1)
    with pytest.raises(CheckpointError) as info:
        C.load_model(path, linear(), card(a=9, b=8, c=7, d=6, n=2), "expression")
    assert info.value.message == (f"{path}: card 'lin' was built with other arguments than this run's expression "
                                  "model (a 1 vs 9, b 2 vs 8, c 3 vs 7)")
    assert info.value.hint == "use the same model args as the checkpoint"
    # an argument the file's card does not record is not a difference; the same values load
    m = linear(seed=1)
    C.load_model(path, m, card(a=1, b=2, c=3, d=4, n=2, extra=5), "expression")
    assert torch.equal(m.weight, linear(seed=0).weight)


def test_load_model_of_other_sizes_is_one_checkpoint_error(tmp_path):
    path = tmp_path / "m.safetensors"
    C.save_model(path, linear(2), card(), "expression", 1)
    with pytest.raises(CheckpointError, match=r"m.safetensors does not fit the expression model \(.*size mismatch"):
        C.load_model(path, linear(3), card(), "expression")


def test_short_error_keeps_160_characters():
    assert C.short_error(ValueError("first\nsecond")) == "first"
    assert C.short_error(KeyError()) == "KeyError"
    assert C.short_error(ValueError("  \n ")) == "ValueError"
    assert C.short_error(ValueError("x" * 160)) == "x" * 160
    assert C.short_error(ValueError("y" * 161)) == "y" * 157 + "..."


def _save(run, step, keep=3, roles=("expression",), extra=None):
    models = {r: (linear(seed=step), card()) for r in roles}
    state = {"optimizer": {"lr": 1}, "schedule": {"step": step}, "step": step}
    return C.save_checkpoint(run, step, models, state, "kind: x\n", json.dumps({"subjects": ["a"]}), keep, extra)


def test_save_checkpoint_writes_a_complete_folder_and_the_latest_pointer(tmp_path):
    run = tmp_path / "run"
    ckpt = _save(run, 7, extra={"kind": "train-joint", "loss": 0.5})
    assert ckpt == run / "checkpoints" / "step_000007" and ckpt.is_dir()
    assert sorted(p.name for p in ckpt.iterdir()) == ["expression.card.yaml", "expression.safetensors", "meta.json",
                                                      "recipe.yaml", "subjects.json", "trainer.pt"]
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["step"] == 7 and meta["models"] == {"expression": "lin"}
    assert meta["kind"] == "train-joint" and meta["loss"] == 0.5 and isinstance(meta["time"], float)
    assert (ckpt / "recipe.yaml").read_text() == "kind: x\n"
    assert json.loads((ckpt / "subjects.json").read_text()) == {"subjects": ["a"]}
    assert (run / "checkpoints" / "latest").read_text() == "step_000007"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_000007"]  # no temp left
    state, _, _ = C.read_model_file(ckpt / "expression.safetensors")
    assert torch.equal(state["weight"], linear(seed=7).weight)
    assert C.load_trainer_state(ckpt)["step"] == 7


def test_save_checkpoint_keeps_the_newest(tmp_path):
    run = tmp_path / "run"
    for step in (1, 2, 3, 4):
        _save(run, step, keep=2)
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_000003", "step_000004"]
    _save(run, 5, keep=1)
    assert [p.name for p in (run / "checkpoints").glob("step_*")] == ["step_000005"]
    _save(run, 5, keep=1)  # the same step again replaces it
    assert C.latest_checkpoint(run) == run / "checkpoints" / "step_000005"


def test_latest_checkpoint_follows_the_pointer_else_the_newest_complete(tmp_path):
    run = tmp_path / "run"
    assert C.latest_checkpoint(run) is None and C.resume_candidates(run) == []
    _save(run, 1)
    _save(run, 2)
    root = run / "checkpoints"
    (root / "step_000009").mkdir()  # no meta.json: not complete
    assert C.latest_checkpoint(run) == root / "step_000002"
    (root / "latest").write_text("step_000001\n")
    assert C.latest_checkpoint(run) == root / "step_000001"
    assert C.resume_candidates(run) == [root / "step_000001", root / "step_000002"]
    for bad in ("../run", "step_000005", ".hidden", ""):
        (root / "latest").write_text(bad)
        assert C.latest_checkpoint(run) == root / "step_000002", bad
    (root / "latest").unlink()
    assert C.resume_candidates(run) == [root / "step_000002", root / "step_000001"]


def test_load_trainer_state_refusals(tmp_path):
    ckpt = tmp_path / "step_000001"
    ckpt.mkdir()
    with pytest.raises(CheckpointError) as info:
        C.load_trainer_state(ckpt)
    assert info.value.message == f"{ckpt}: trainer.pt is missing, cannot resume"
    assert info.value.hint == "start a new run with init: instead"
    (ckpt / "trainer.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"trainer.pt is unreadable \(") as info:
        C.load_trainer_state(ckpt)
    try:  # the reason given is torch's own, from its first line
        torch.load(ckpt / "trainer.pt", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever torch raises for it
        first = str(exc).strip().splitlines()[0]
    assert info.value.message.startswith(f"{ckpt / 'trainer.pt'} is unreadable ({first[:100]}")
    torch.save({"schedule": {}}, ckpt / "trainer.pt")
    with pytest.raises(CheckpointError, match=r"trainer.pt is not an fx trainer state \(no optimizer, step\)$"):
        C.load_trainer_state(ckpt)
    torch.save([1, 2], ckpt / "trainer.pt")
    with pytest.raises(CheckpointError, match=r"\(no optimizer, schedule, step\)"):
        C.load_trainer_state(ckpt)
    torch.save({"optimizer": {}, "schedule": {}, "step": 3}, ckpt / "trainer.pt")
    assert C.load_trainer_state(ckpt)["step"] == 3


def test_check_resumable_names_the_unreadable_file(tmp_path):
    run = tmp_path / "run"
    ckpt = _save(run, 1, roles=("expression", "predictor"))
    assert C.check_resumable(ckpt, ("expression", "predictor"))["step"] == 1
    with pytest.raises(CheckpointError, match=r"reconstruction.safetensors is missing$"):
        C.check_resumable(ckpt, ("expression", "reconstruction"))
    (ckpt / "predictor.safetensors").write_bytes(b"\x01" * 9)
    with pytest.raises(CheckpointError, match=r"predictor.safetensors is not a readable safetensors file \("):
        C.check_resumable(ckpt, ("predictor",))
    (ckpt / "subjects.json").write_text(json.dumps({"names": []}))
    with pytest.raises(CheckpointError, match=r"subjects.json is unreadable \('subjects'\)"):
        C.check_resumable(ckpt, ("expression",))
    (ckpt / "subjects.json").write_text("[1]")
    with pytest.raises(CheckpointError, match=r"subjects.json is unreadable \("):
        C.check_resumable(ckpt, ("expression",))


def test_pick_resume_falls_back_with_a_warning_naming_both(tmp_path, fx_log):
    run = tmp_path / "run"
    with pytest.raises(CheckpointError) as info:
        C.pick_resume(run, ("expression",))
    assert info.value.message == f"{run}: nothing to resume (no checkpoint inside)"
    assert info.value.hint == "drop --resume to start a run"
    _save(run, 1)
    _save(run, 2)
    (run / "checkpoints" / "step_000002" / "trainer.pt").unlink()
    fx_log()
    ckpt, state = C.pick_resume(run, ("expression",))
    assert ckpt.name == "step_000001" and state["step"] == 1
    assert fx_log() == ("checkpoint step_000002 is unreadable (" + str(run / "checkpoints" / "step_000002")
                        + ": trainer.pt is missing, cannot resume (start a new run with init: instead)); resuming "
                        "from the previous one, step_000001")
    ckpt, _ = C.pick_resume(run, ("expression",))  # the same again: nothing else is changed by picking
    assert ckpt.name == "step_000001"


def test_pick_resume_with_a_single_unreadable_checkpoint(tmp_path):
    run = tmp_path / "run"
    _save(run, 1)
    (run / "checkpoints" / "step_000001" / "trainer.pt").unlink()
    with pytest.raises(CheckpointError) as info:
        C.pick_resume(run, ("expression",))
    assert info.value.message == (f"cannot resume {run}: {run / 'checkpoints' / 'step_000001'}: trainer.pt is missing, "
                                  "cannot resume")  # no "older checkpoints" clause for a run of one
    assert info.value.hint.startswith("restore the checkpoint from a copy, or start a new run")


def test_resolve_model_file_from_a_file_a_checkpoint_or_a_run(tmp_path):
    run = tmp_path / "run"
    ckpt = _save(run, 3, roles=("expression", "reconstruction"))
    file = ckpt / "expression.safetensors"
    assert C.resolve_model_file(file, "x") == file
    assert C.resolve_model_file(ckpt, "expression") == file
    assert C.resolve_model_file(run, "reconstruction") == ckpt / "reconstruction.safetensors"
    with pytest.raises(MissingFileError, match="predictor checkpoint not found: .*nowhere"):
        C.resolve_model_file(tmp_path / "nowhere", "predictor")
    with pytest.raises(CheckpointError) as info:
        C.resolve_model_file(ckpt, "predictor")
    assert info.value.message == f"{ckpt} has no predictor model (it has: expression, reconstruction)"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as info:
        C.resolve_model_file(tmp_path / "empty", "expression")
    assert info.value.message == f"{tmp_path / 'empty'}: no checkpoint inside"
    assert info.value.hint == "pass a run directory made by `fx train`"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "meta.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"has no expression model \(it has: none\)"):
        C.resolve_model_file(bare, "expression")


def test_rng_state_round_trip():
    torch.manual_seed(3)
    saved = C.rng_state()
    assert set(saved) >= {"torch"}
    want = torch.rand(4)
    torch.rand(10)
    C.set_rng_state(saved)
    assert torch.equal(torch.rand(4), want)


def test_load_model_is_strict_about_extra_weights(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    state = {**linear().state_dict(), "extra": torch.zeros(1)}
    save_file(state, str(path), metadata={"fx_card": json.dumps(card().model_dump(mode="json")), "fx_role": "x"})
    with pytest.raises(CheckpointError, match=r"does not fit the expression model \(.*Unexpected key"):
        C.load_model(path, linear(), card(), "expression")


def test_save_checkpoint_over_a_leftover_temp_folder_with_path_metadata(tmp_path):
    run = tmp_path / "run"
    leftover = run / "checkpoints" / ".step_000003.tmp"
    leftover.mkdir(parents=True)
    (leftover / "junk").write_text("from a crash")
    ckpt = _save(run, 3, extra={"source": tmp_path / "data"})
    assert not leftover.exists() and not (ckpt / "junk").exists()
    assert json.loads((ckpt / "meta.json").read_text())["source"] == str(tmp_path / "data")  # paths as text


def test_without_a_pointer_the_newest_of_three_complete_checkpoints_is_latest(tmp_path):
    run = tmp_path / "run"
    for step in (1, 2, 3):
        _save(run, step)
    root = run / "checkpoints"
    (root / "latest").unlink(missing_ok=True)
    assert C.latest_checkpoint(run) == root / "step_000003"
    assert C.resume_candidates(run) == [root / "step_000003", root / "step_000002", root / "step_000001"]
