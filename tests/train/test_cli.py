"""`fx train` in-process (DDP under torchrun: test_ddp.py)."""

from __future__ import annotations

import json

from faceexpr_cli.cli.app import main


def test_train_joint_cli_json_and_resume(clip_folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "joint", "--recipe", "joint-tiny", "--out", str(out), f"data.path={clip_folder}",
            "trainer.max_steps=2", "trainer.tensorboard=false", "data.workers=0", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["checkpoint"].endswith("step_000002")
    assert main(["train", "joint", "--out", str(out), "--resume", "trainer.max_steps=3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    assert main(["train", "joint", "--recipe", "joint-tiny", "--out", str(tmp_path / "x"), "trainer.nope=1"]) == 2
    assert "unknown key 'trainer.nope'" in capsys.readouterr().err


def test_train_group_accepts_commands_from_other_modules():
    from typer.testing import CliRunner

    from faceexpr_cli.cli.app import app
    from faceexpr_cli.cli.commands.train import train_app

    @train_app.command("probe-extra")
    def _extra() -> None:
        """Added by another module."""

    try:
        result = CliRunner().invoke(app, ["train", "--help"])
        assert "probe-extra" in result.output and "joint" in result.output
    finally:
        train_app.registered_commands = [c for c in train_app.registered_commands if c.name != "probe-extra"]
