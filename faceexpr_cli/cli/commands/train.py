"""`fx train`: a command group. Other modules add their own subcommands to ``train_app`` in their ``register``::

    from faceexpr_cli.cli.commands.train import train_app
    def register(app): train_app.command("animator")(train_animator)

(Typer builds the group when fx runs, so commands added after ``app.add_typer`` still appear.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OverridesArg

train_app = typer.Typer(help="Train models from recipes (see recipes/ and docs/train.md).\n\n"
                        "Examples: [cyan]fx train joint --recipe joint-tiny data.path=sample[/], "
                        "[cyan]fx train animator --recipe fomm-tiny[/]", no_args_is_help=True)

RecipeOpt = Annotated[str | None, typer.Option("--recipe", "-r", help="Recipe name (recipes/NAME.yaml) or path.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/<recipe>).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its latest checkpoint.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache-tokens", help="Keep the frozen tokenizer's tokens here (fp16).")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or auto (default: the recipe's).")]
SubjectFromOpt = Annotated[str | None, typer.Option(
    "--subject-from", help="Who is in a clip: auto, source (video), track (face track) or a manifest column; "
                           "same as data.subject_from=...")]


def run_recipe(kind: str, recipe: str | None, default: str, out: Path | None, resume: bool, cache: Path | None,
               device: str | None, overrides: list[str] | None, json_out: bool,
               subject_from: str | None = None) -> None:
    """Load the recipe (the run's own when resuming), train, print the final figures."""
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.console import print_json, print_table

    name = recipe or default
    run_dir = out or Path("runs") / Path(name).stem
    source: str | Path = name
    if resume and recipe is None and (run_dir / "recipe.yaml").is_file():
        source = run_dir / "recipe.yaml"
    overrides = [*(overrides or []), *([f"data.subject_from={subject_from}"] if subject_from else [])]
    cfg = load_recipe(source, overrides, kind=kind)
    from faceexpr_cli.train.runner import run

    result = run(cfg, run_dir, resume=resume, cache_tokens=cache, device=device)
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return
    last = result.rows[-1] if result.rows else {}
    summary = {"run": str(result.run_dir), "steps": result.steps, "checkpoint": str(result.checkpoint),
               "first": result.rows[0] if result.rows else {}, "last": last,
               "evals": [{k: str(v) for k, v in e.items()} for e in result.evals], "token_cache": result.cache}
    if json_out:
        print_json(summary)
        return
    rows = [{"scalar": k, "first": f"{result.rows[0].get(k, float('nan')):.5g}", "last": f"{v:.5g}"}
            for k, v in last.items() if k != "step"]
    print_table(rows, ["scalar", "first", "last"], title=f"{kind}: {result.steps} steps -> {result.checkpoint}")


@train_app.command("joint")
def joint(
    overrides: OverridesArg = None,
    recipe: RecipeOpt = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    cache_tokens: CacheOpt = None,
    device: DeviceOpt = None,
    subject_from: SubjectFromOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train the expression transformer and the reconstruction model together (seed 000's joint run).

    Examples: [cyan]fx train joint --recipe joint-tiny data.path=sample[/],
    [cyan]fx train joint --recipe joint-518 data.path=clips/ trainer.max_steps=1000 --cache-tokens cache/[/],
    [cyan]fx train joint --recipe joint-518 data.path=crops/ --subject-from track[/] (an fx crop folder),
    [cyan]fx train joint --out runs/joint-518 --resume[/],
    [cyan]torchrun --nproc_per_node 2 -m faceexpr_cli train joint --recipe joint-518 data.path=clips/[/]
    """
    run_recipe("train-joint", recipe, "joint-518", out, resume, cache_tokens, device, overrides, json_out,
               subject_from)


@train_app.command("expression")
def expression(
    overrides: OverridesArg = None,
    recipe: RecipeOpt = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    cache_tokens: CacheOpt = None,
    device: DeviceOpt = None,
    subject_from: SubjectFromOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train the causal expression predictor on a trained expression transformer's tokens.

    Examples: [cyan]fx train expression --recipe expression-tiny expression.init=runs/joint-tiny data.path=sample[/],
    [cyan]fx train expression --recipe expression-tiny expression.init=runs/joint-tiny data.path=sample --out runs/pred[/]
    """
    run_recipe("train-expression", recipe, "expression-predictor", out, resume, cache_tokens, device, overrides,
               json_out, subject_from)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
