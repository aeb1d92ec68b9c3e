"""`fx train joint|expression`: user mistakes and damaged run folders end in one line and the right exit code, and
`--resume` steps over an unreadable newest checkpoint."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from faceexpr_cli.cli.app import main
from faceexpr_cli.train import checkpoint as C


def one_error(err: str) -> str:
    """The single `error:` line fx printed; no traceback."""
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps log lines on stderr


@pytest.fixture
def train(clip_folder, capsys):
    """``fx train joint`` on the test clips; returns (exit code, stdout, stderr)."""

    def call(*args: str, kind: str = "joint", recipe: str | None = "joint-tiny"):
        base = ["train", kind, *(["--recipe", recipe] if recipe else []), f"data.path={clip_folder}",
                "data.workers=0", "trainer.tensorboard=false"]
        code = main([*base, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.mark.parametrize(("override", "expect"), [
    ("schedule.lr.warmup=-0.001", "'schedule.lr.warmup': Input should be greater than or equal to 0"),
    ("schedule.lr.final=.nan", "'schedule.lr.final': Input should be a finite number"),
    ("schedule.lr.initial=nan", "'schedule.lr.initial': Input should be a finite number"),
    ("schedule.min_lr=.inf", "'schedule.min_lr': Input should be a finite number"),
    ("optim.weight_decay=-1", "'optim.weight_decay'"),
    ("optim.grad_clip=.inf", "'optim.grad_clip': Input should be a finite number"),
    ("optim.betas=[0.9,.nan]", "'optim.betas.1': Input should be a finite number"),
    ("optim.betas=[0.9,1.0]", "betas must lie in [0, 1)"),
    ("loss.perceptual=.nan", "'loss.perceptual': Input should be a finite number"),
    ("loss.temporal.coherence=-.inf", "'loss.temporal.coherence'"),
    ("schedule.weights.temporal.final=-1", "'schedule.weights.temporal.final'"),
    ("data.fps=.inf", "'data.fps': Input should be a finite number"),
    ("expression.args.dropout=.nan", "args.dropout must be a finite number"),
    ("data.size=57", "data.size 57 is not a multiple of the tokenizer's patch size 14 (e.g. 56 or 70)"),
    ("data.size=20", "data.size 20 is not a multiple of the tokenizer's patch size 14"),
])
def test_bad_hyperparameters_are_config_errors_before_any_work(train, tmp_path, override, expect):
    out = tmp_path / "run"
    code, _, err = train("--out", str(out), override)
    line = one_error(err)
    assert code == 2 and expect in line and "joint-tiny.yaml" in line, line
    assert not out.exists()  # refused while validating the recipe: nothing built, nothing written


def test_bad_hyperparameters_of_fx_train_expression_too(train, tmp_path):
    code, _, err = train("--out", str(tmp_path / "r"), "schedule.lr.warmup=.nan", kind="expression",
                         recipe="expression-tiny")
    assert code == 2 and "'schedule.lr.warmup': Input should be a finite number" in one_error(err)


def test_a_binary_recipe_file_is_a_config_error(train, tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_bytes(bytes(range(256)) * 4)
    code, _, err = train("--out", str(tmp_path / "a"), recipe=str(bad))
    assert code == 2 and "r.yaml: is a binary file, not YAML" in one_error(err)
    bad.write_bytes(b"\xa0\xff\xfe kind: train-joint\n")  # not UTF-8, no NUL byte
    code, _, err = train("--out", str(tmp_path / "b"), recipe=str(bad))
    assert code == 2 and "r.yaml: is not UTF-8 text" in one_error(err)


def test_cuda_on_a_machine_without_it_is_one_line(train, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # GPU-neutral: the same answer on a GPU box
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for args in (["trainer.device=cuda"], ["--device", "cuda:0"]):
        code, _, err = train("--out", str(tmp_path / "r"), "trainer.max_steps=1", *args)
        line = one_error(err)
        assert code == 1 and "PyTorch sees no CUDA device" in line and "--device cpu" in line, line
    assert C.latest_checkpoint(tmp_path / "r") is None
    code, _, err = train("--out", str(tmp_path / "r"), "--device", "cuda:3")
    assert code == 2 and "no such CUDA device (this machine has none)" in one_error(err)
    code, _, err = train("--out", str(tmp_path / "r"), "--device", "banana")
    assert code == 2 and "'banana': unknown device" in one_error(err)


def test_out_that_is_or_lies_under_a_file(train, tmp_path):
    file = tmp_path / "file"
    file.write_text("not a folder")
    code, _, err = train("--out", str(file), "trainer.max_steps=1")
    assert code == 2 and f"--out {file} is a file" in one_error(err)
    code, _, err = train("-o", str(file / "run"), "trainer.max_steps=1")
    assert code == 2 and f"lies under the file {file}" in one_error(err)
    code, _, err = train("-o", str(tmp_path / "r"), "--cache-tokens", str(file / "c"), "trainer.max_steps=1")
    assert code == 2 and "--cache-tokens" in one_error(err)
    assert file.read_text() == "not a folder"


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, clip_folder):
    """4 steps with checkpoints at steps 2 and 4."""
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.runner import run

    recipe = load_recipe("joint-tiny", [f"data.path={clip_folder}", "data.workers=0", "trainer.tensorboard=false",
                                        "trainer.max_steps=4", "trainer.save_every=2", "trainer.log_every=1"])
    out = tmp_path_factory.mktemp("saved") / "run"
    run(recipe, out)
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*")) == ["step_000002", "step_000004"]
    return out


@pytest.fixture(scope="module")
def straight_six(tmp_path_factory, clip_folder):
    """The same recipe run straight to step 6: what any exact resume must reproduce."""
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.runner import run

    recipe = load_recipe("joint-tiny", [f"data.path={clip_folder}", "data.workers=0", "trainer.tensorboard=false",
                                        "trainer.max_steps=6", "trainer.save_every=2", "trainer.log_every=1"])
    out = tmp_path_factory.mktemp("straight") / "run"
    return run(recipe, out).checkpoint


def _cut(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _weights(ckpt) -> dict[str, torch.Tensor]:
    state, _, _ = C.read_model_file(ckpt / "expression.safetensors")
    more, _, _ = C.read_model_file(ckpt / "reconstruction.safetensors")
    return {**state, **{f"r.{k}": v for k, v in more.items()}}


@pytest.mark.parametrize("damaged", ["trainer.pt", "reconstruction.safetensors", "subjects.json"])
def test_resume_falls_back_to_the_previous_checkpoint(saved_run, straight_six, tmp_path, train, damaged):
    run_dir = tmp_path / "run"
    shutil.copytree(saved_run, run_dir)
    _cut(run_dir / "checkpoints" / "step_000004" / damaged)
    code, out, err = train("--out", str(run_dir), "--resume", "trainer.max_steps=6", "--json", recipe=None)
    assert code == 0, err[-2000:]
    assert json.loads(out)["steps"] == 6
    warning = flat(err)
    assert ("checkpoint step_000004 is unreadable" in warning and damaged in warning
            and "resuming from the previous one, step_000002" in warning), warning
    # resumed from step 2 for real: exact resume reproduces the straight run's weights bit for bit
    got, want = _weights(run_dir / "checkpoints" / "step_000006"), _weights(straight_six)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_resume_with_no_readable_checkpoint_is_one_line_exit_1(saved_run, tmp_path, train):
    run_dir = tmp_path / "run"
    shutil.copytree(saved_run, run_dir)
    for step in ("step_000002", "step_000004"):
        (run_dir / "checkpoints" / step / "trainer.pt").write_bytes(b"\x00not a torch file" * 10)
    code, _, err = train("--out", str(run_dir), "--resume", "trainer.max_steps=6", recipe=None)
    line = one_error(err)
    assert code == 1, err[-2000:]
    assert "cannot resume" in line and "step_000004" in line and "trainer.pt is unreadable" in line, line
    assert "1 older checkpoint(s) are unreadable too" in line
    assert not (run_dir / "checkpoints" / "step_000006").exists()


def test_resume_reads_past_a_garbled_latest_pointer(saved_run, tmp_path, train):
    run_dir = tmp_path / "run"
    shutil.copytree(saved_run, run_dir)
    (run_dir / "checkpoints" / "latest").write_bytes(b"\xff\xfe../../etc\x00")
    code, out, err = train("--out", str(run_dir), "--resume", "trainer.max_steps=5", "--json", recipe=None)
    assert code == 0, err[-2000:]
    assert json.loads(out)["steps"] == 5 and "resuming" in flat(err) and "step_000004" in flat(err)
