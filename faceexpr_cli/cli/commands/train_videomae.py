"""`fx train videomae`: VideoMAE-style masked pretraining on unlabelled face clips (MAE-DFER's appearance + motion
target), registered on the `fx train` group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OverridesArg


def videomae(
    overrides: OverridesArg = None,
    recipe: Annotated[str, typer.Option("--recipe", "-r", help="Recipe name (recipes/NAME.yaml) or path.")]
    = "videomae-tiny",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/<recipe>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its latest "
                                                          "checkpoint.")] = False,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: the "
                                                                "recipe's).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Pretrain a VideoMAE encoder on unlabelled face clips: 90% tube masking, normalised-pixel and frame-difference
    targets. Fine-tuning starts from the run with `model.init=RUN`.

    Examples:
      [cyan]fx train videomae --recipe videomae-tiny data.path=crops/ --out runs/vmae-tiny[/]
      [cyan]fx train videomae --recipe videomae-base-pretrain data.path=voxceleb2_crops/ --out runs/vmae[/]
      [cyan]fx train videomae --out runs/vmae-tiny --resume[/]
    """
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.console import print_json, print_table
    from faceexpr_cli.dfer.pretrain import run

    run_dir = out or Path("runs") / Path(recipe).stem
    source: str | Path = recipe
    if resume and (run_dir / "recipe.yaml").is_file():
        source = run_dir / "recipe.yaml"
    cfg = load_recipe(source, list(overrides or []), kind="train-videomae")
    result = run(cfg, run_dir, resume=resume, device=device)
    first = result.rows[0] if result.rows else {}
    last = result.rows[-1] if result.rows else {}
    if json_out:
        print_json({"run": str(result.run_dir), "steps": result.steps, "checkpoint": str(result.checkpoint),
                    "first": first, "last": last})
        return
    rows = [{"scalar": k, "first": f"{first.get(k, float('nan')):.5g}", "last": f"{v:.5g}"}
            for k, v in last.items() if k != "step"]
    print_table(rows, ["scalar", "first", "last"], title=f"train-videomae: {result.steps} steps -> {result.checkpoint}")


def register(app: typer.Typer) -> None:
    from faceexpr_cli.cli.commands.train import train_app

    train_app.command("videomae")(videomae)
