"""The runner's bookkeeping against independent arithmetic: which steps are logged, evaluated and saved, the LR and
weights each row records, the trainer state, resume rows; and its small helpers (seeds, precision, subject tables)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from faceexpr_cli.errors import ConfigError, DataError, UsageError
from faceexpr_cli.train import checkpoint as C
from faceexpr_cli.train import runner as R
from faceexpr_cli.train.monitor import Monitor
from faceexpr_cli.train.tasks import JointTask

BASE = ["data.workers=0", "trainer.tensorboard=false", "trainer.save_every=2", "trainer.keep_checkpoints=2",
        "trainer.log_every=2", "trainer.eval_every=0", "trainer.eval_frames=12"]


def joint_tiny_lr(k: int) -> float:
    """joint-tiny's schedule at 0-based step k < 20: 1e-4 -> 3e-3 over 20 warm-up steps."""
    return 1e-4 + (3e-3 - 1e-4) * k / 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory, clip_folder):
    """5 steps, then resumed to 9 with evaluations every 4 steps; the frames counted at each step."""
    from faceexpr_cli.config.recipes import load_recipe

    out = tmp_path_factory.mktemp("bookkeeping") / "run"
    counted: list[int] = []
    clipped: list[tuple[int, float]] = []
    seen: list[dict] = []
    real, real_clip = Monitor.count_frames, torch.nn.utils.clip_grad_norm_
    real_compute = JointTask.compute

    def compute(self, module, tokens, pos, rows, images, clips, tokenizer, weights):
        seen.append({"tokens": tokens.clone(), "pos": pos.clone(), "rows": rows.clone(), "images": images.clone(),
                     "clips": clips, "weights": dict(weights), "training": module.training})
        return real_compute(self, module, tokens, pos, rows, images, clips, tokenizer, weights)

    threads_before = torch.get_num_threads()
    torch.set_num_threads(2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(JointTask, "compute", compute)
        mp.setattr(Monitor, "count_frames", lambda self, n: (counted.append(n), real(self, n)))
        mp.setattr(torch.nn.utils, "clip_grad_norm_",
                   lambda params, norm: (clipped.append((len(params), norm)), real_clip(params, norm))[1])
        first = R.run(load_recipe("joint-tiny", [f"data.path={clip_folder}", *BASE, "trainer.max_steps=5"]), out)
        threads = torch.get_num_threads()
        ckpts = sorted(p.name for p in (out / "checkpoints").glob("step_*"))
        state5 = C.load_trainer_state(out / "checkpoints" / "step_000005")
        second = R.run(load_recipe("joint-tiny", [f"data.path={clip_folder}", *BASE, "trainer.max_steps=9",
                                                  "trainer.eval_every=4"]), out, resume=True)
    torch.set_num_threads(threads_before)
    return SimpleNamespace(out=out, first=first, second=second, ckpts=ckpts, state5=state5, counted=counted,
                           clipped=clipped, seen=seen, threads=threads)


def test_logged_rows_steps_lr_weights_and_total(runs):
    rows = runs.first.rows
    assert [r["step"] for r in rows] == [1.0, 2.0, 4.0, 5.0]  # the first step, every 2nd, and the last
    for r in rows:
        k = int(r["step"]) - 1  # the schedule is applied at the 0-based step
        assert r["lr"] == pytest.approx(joint_tiny_lr(k), rel=1e-9)
        assert (r["w_reconstruction"], r["w_temporal"], r["w_diversity"]) == pytest.approx((1.0, 0.1, 0.1))
        want = r["loss_reconstruction"] + 0.1 * r["loss_temporal"] + 0.1 * r["loss_diversity"]
        assert r["loss"] == pytest.approx(want, rel=1e-5)
    assert runs.first.steps == 5 and runs.first.cache == {}
    assert runs.threads == 1  # trainer.threads of joint-tiny
    assert runs.counted[:5] == [2 * 10] * 5  # 2 clips x 10 frames x 1 process per step


def test_each_step_feeds_the_batch_of_its_step_as_images_rows_and_tokens(runs, clip_folder, run_tokenizer):
    from faceexpr_cli.train.data import BatchStream, FolderClips, SubjectTable

    src = FolderClips(clip_folder, 56, 10)
    table = SubjectTable(src.subjects())
    batches = iter(BatchStream(src, 2, 10, seed=0, rank=0, start=0, workers=0))
    tok = run_tokenizer(runs.out)
    assert len(runs.seen) == 9
    for k, seen in enumerate(runs.seen[:3]):
        batch = next(batches)
        want = torch.from_numpy(batch.frames).reshape(20, 56, 56, 3).permute(0, 3, 1, 2).float() / 255
        assert seen["clips"] == 2 and torch.equal(seen["images"], want), k
        assert seen["rows"].tolist() == [table.row(s) for s in batch.subjects for _ in range(10)]
        with torch.no_grad():
            assert torch.allclose(seen["tokens"], tok(want)[0], atol=1e-5)
            assert torch.allclose(seen["pos"], tok.positional(4, 4))
        assert seen["training"] and seen["weights"] == pytest.approx({"reconstruction": 1.0, "temporal": 0.1,
                                                                      "diversity": 0.1})


def test_the_random_tokenizer_is_saved_with_the_run(runs):
    state, card, role = C.read_model_file(runs.out / "tokenizer.safetensors")
    assert role == "tokenizer" and card.name == "dinov2-vits14" and card.tiny == {}
    assert card.preset["image_size"] == 56 and card.preset["dim"] == 64  # the builder arguments it was made with


def test_checkpoints_saved_every_two_steps_and_at_the_end(runs):
    assert runs.ckpts == ["step_000004", "step_000005"]  # saved at 2, 4 and 5; two kept
    assert runs.first.checkpoint == runs.out / "checkpoints" / "step_000005"
    state = runs.state5
    assert state["step"] == 5 and state["schedule"]["step"] == 4 and state["scaler"] == {}
    assert set(state["rng"]) >= {"torch"} and state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(
        joint_tiny_lr(4))
    group = state["optimizer"]["param_groups"][0]
    assert group["weight_decay"] == 0.01 and tuple(group["betas"]) == (0.9, 0.999)  # the recipe's optim settings
    # every step clips the gradients of the trained parameters at optim.grad_clip
    assert len(runs.clipped) == 9 and {norm for _, norm in runs.clipped} == {1.0}
    assert runs.clipped[0][0] == len(group["params"])
    # only an end-of-run evaluation with eval_every=0, of trainer.eval_frames frames of the first clip
    assert [e["step"] for e in runs.first.evals] == [5]
    from faceexpr_cli.media import probe

    ev = runs.first.evals[0]
    assert ev["clip"] == "astronaut/clip_00.mp4" and probe(ev["video"]).frame_count == 12


def test_the_resumed_run_continues_the_rows_and_the_counts(runs):
    second = runs.second
    assert second.steps == 9
    assert [r["step"] for r in second.rows] == [1.0, 2.0, 4.0, 5.0, 6.0, 8.0, 9.0]  # the old rows, then 6 = start+1
    for r in second.rows[4:]:
        assert r["lr"] == pytest.approx(joint_tiny_lr(int(r["step"]) - 1), rel=1e-9)
    assert [e["step"] for e in second.evals] == [8, 9]
    assert sorted(p.name for p in (runs.out / "checkpoints").glob("step_*")) == ["step_000008", "step_000009"]
    meta = json.loads((second.checkpoint / "meta.json").read_text())
    assert meta["step"] == 9 and meta["kind"] == "train-joint" and meta["loss"] == pytest.approx(second.rows[-1]["loss"])
    assert meta["models"] == {"expression": "expression-transformer", "reconstruction": "reconstruction"}
    assert len(runs.counted) == 9
    assert (runs.out / "recipe.yaml").read_text() == (second.checkpoint / "recipe.yaml").read_text()
    assert json.loads((runs.out / "subjects.json").read_text()) == {"subjects": ["astronaut", "grace_hopper"]}


def test_a_recipe_without_data_is_refused_before_any_work(tmp_path):
    from faceexpr_cli.config.recipes import load_recipe

    recipe = load_recipe("joint-tiny", ["data.path=null", "trainer.max_steps=1"])
    with pytest.raises(ConfigError) as info:
        R.run(recipe, tmp_path / "r")
    assert info.value.message == "the recipe has no data.path"
    assert info.value.hint == "add data.path=FOLDER (or data.path=sample)"


def test_training_diverged_message():
    err = R.TrainingDivergedError(7, None)
    assert err.message == "loss is not finite at step 7 (no checkpoint was written yet)"
    assert err.hint == "lower the learning rate or use fp32, then resume from that checkpoint"
    assert (err.step, err.last_good) == (7, None) and err.exit_code == 1
    assert R.TrainingDivergedError(3, "run/step_2").message == "loss is not finite at step 3 (last good checkpoint: run/step_2)"


def test_step_seed_depends_on_seed_step_and_rank():
    base = R._step_seed(0, 5, 0)
    assert base == R._step_seed(0, 5, 0) and 0 <= base < 2**32
    assert len({base, R._step_seed(1, 5, 0), R._step_seed(0, 6, 0), R._step_seed(0, 5, 1)}) == 4


def test_precision_rules(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    for spec in ("auto", "fp32", "bf16", "fp16"):
        assert R._precision(spec, cpu) is None
    assert R._precision("fp32", gpu) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert R._precision("auto", gpu) is torch.bfloat16 and R._precision("bf16", gpu) is torch.bfloat16
    assert R._precision("fp16", gpu) is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert R._precision("auto", gpu) is torch.float16 and R._precision("bf16", gpu) is torch.float16


def _save(run, step):
    model = torch.nn.Linear(1, 1)
    from faceexpr_cli.config.cards import ModelCard

    card = ModelCard(name="lin", builder="linear", description="d", task="t", licence="MIT")
    state = {"optimizer": {}, "schedule": {"step": step}, "step": step}
    return C.save_checkpoint(run, step, {"expression": (model, card)}, state, "", json.dumps({"subjects": ["a"]}), 3)


def test_setup_run_dir(tmp_path):
    assert R._setup_run_dir(tmp_path / "new", False, ("expression",)) == (None, None)
    _save(tmp_path / "run", 2)
    with pytest.raises(UsageError) as info:
        R._setup_run_dir(tmp_path / "run", False, ("expression",))
    assert info.value.message == f"{tmp_path / 'run'} already holds a run"
    assert info.value.hint == "pass --resume to continue it, or choose another --out"
    ckpt, state = R._setup_run_dir(tmp_path / "run", True, ("expression",))
    assert ckpt.name == "step_000002" and state["step"] == 2


def _recipe(init=None, subjects=None):
    return SimpleNamespace(expression=SimpleNamespace(init=init), data=SimpleNamespace(subjects=subjects))


def _table(path, names):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"subjects": names}))
    return path


def test_subject_table_sources_in_order(tmp_path):
    task = SimpleNamespace(capacity=lambda: 3)
    source = SimpleNamespace(subjects=lambda: ["b", "a"])
    fresh = R._subjects(_recipe(), source, task, None)
    assert fresh.rows == {"b": 0, "a": 1} and fresh.capacity == 3
    ckpt = tmp_path / "ckpt"
    _table(ckpt / "subjects.json", ["x", "a", "b"])
    given = _table(tmp_path / "given.json", ["a", "b", "y"])
    assert list(R._subjects(_recipe(subjects=str(given)), source, task, ckpt).rows) == ["x", "a", "b"]  # resume wins
    assert list(R._subjects(_recipe(init=str(ckpt), subjects=str(given)), source, task, None).rows) == ["a", "b", "y"]
    assert list(R._subjects(_recipe(init=str(ckpt)), source, task, None).rows) == ["x", "a", "b"]  # init dir's table
    model = ckpt / "expression.safetensors"
    model.write_bytes(b"")
    assert list(R._subjects(_recipe(init=str(model)), source, task, None).rows) == ["x", "a", "b"]  # beside the file
    run = tmp_path / "joint"
    _save(run, 4)
    (run / "checkpoints" / "step_000004" / "subjects.json").write_text(json.dumps({"subjects": ["a", "b", "z"]}))
    assert list(R._subjects(_recipe(init=str(run)), source, task, None).rows) == ["a", "b", "z"]  # the latest ckpt's
    (tmp_path / "bare").mkdir()
    assert list(R._subjects(_recipe(init=str(tmp_path / "bare")), source, task, None).rows) == ["b", "a"]
    lone = tmp_path / "lone" / "m.safetensors"
    lone.parent.mkdir()
    lone.write_bytes(b"")
    assert list(R._subjects(_recipe(init=str(lone)), source, task, None).rows) == ["b", "a"]


def test_subject_tables_refuse_unknown_subjects_and_overflow(tmp_path):
    task = SimpleNamespace(capacity=lambda: 3)
    given = _table(tmp_path / "t.json", ["a"])
    with pytest.raises(DataError, match="subject 'b' is not in the subject table"):
        R._subjects(_recipe(subjects=str(given)), SimpleNamespace(subjects=lambda: ["a", "b"]), task, None)
    with pytest.raises(DataError, match="does not fit: the model has 3 subject rows"):
        R._subjects(_recipe(), SimpleNamespace(subjects=lambda: list("abcd")), task, None)
    big = _table(tmp_path / "big.json", list("abcd"))
    with pytest.raises(DataError, match="does not fit: the model has 3 subject rows"):
        R._subjects(_recipe(subjects=str(big)), SimpleNamespace(subjects=lambda: ["a"]), task, None)


def test_cache_tokens_on_shards_is_a_warning_not_a_cache(clip_folder, tiny_recipe, tmp_path, fx_log):
    from faceexpr_cli.dataset import DatasetWriter

    root = tmp_path / "shards"
    with DatasetWriter(root, max_count=4) as w:
        for p in sorted(clip_folder.rglob("*.mp4")):
            meta = {"subject": {"subject_id": p.parent.name}, "fps": 25.0, "frames": 30}
            w.add_sample(f"{p.parent.name}-{p.stem}", p.read_bytes(), meta, meta)
    fx_log()
    res = R.run(tiny_recipe(f"data.path={root}", "trainer.max_steps=1"), tmp_path / "r", cache_tokens=tmp_path / "c")
    assert res.steps == 1 and res.cache == {}
    import re

    assert re.search(r"(^|\s)--cache-tokens needs a clip folder; shards are tokenized on the fly$", fx_log(), re.M)
    assert not any((tmp_path / "c").glob("*/*.npy"))


def test_a_rank_other_than_0_gets_the_token_cache_too(tmp_path, monkeypatch):
    """Ranks other than 0 run without the folder lock, but with the same arguments."""
    from faceexpr_cli.train import distributed as D

    seen = {}
    monkeypatch.setattr(R.D, "setup", lambda device: D.DistInfo(rank=1, world=2))
    monkeypatch.setattr(R.D, "teardown", lambda info: seen.setdefault("teardown", info.rank))
    monkeypatch.setattr(R, "_run", lambda recipe, run_dir, info, resume, cache: seen.update(
        run_dir=run_dir, rank=info.rank, resume=resume, cache=cache) or "result")
    assert R.run("recipe", tmp_path / "r", resume=True, cache_tokens=tmp_path / "c", device="cpu") == "result"
    assert seen == {"run_dir": tmp_path / "r", "rank": 1, "resume": True, "cache": tmp_path / "c", "teardown": 1}
    from faceexpr_cli.runlock import LOCK_NAME

    assert not (tmp_path / "r" / LOCK_NAME).exists()  # rank 0 alone takes the folder lock


def test_the_token_cache_fingerprint_covers_the_tokenizer_arguments(tiny_recipe, tmp_path, monkeypatch):
    from faceexpr_cli.train import token_cache

    made, fingerprinted = [], []
    real_tokenizer, real_fp = R._tokenizer, token_cache.tokenizer_fingerprint

    def tokenizer(*a, **kw):
        made.append(real_tokenizer(*a, **kw))
        return made[-1]

    def fp(tok, name, args, size, fps):
        fingerprinted.append((name, args, size))
        return real_fp(tok, name, args, size, fps)

    monkeypatch.setattr(R, "_tokenizer", tokenizer)
    monkeypatch.setattr(token_cache, "tokenizer_fingerprint", fp)
    recipe = tiny_recipe("trainer.max_steps=1")
    R.run(recipe, tmp_path / "r", cache_tokens=tmp_path / "c")
    [(_, card, args)] = made
    assert fingerprinted == [(card.name, args, recipe.data.size)] and isinstance(args, dict)
