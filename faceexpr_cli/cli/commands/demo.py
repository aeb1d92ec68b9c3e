from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OverridesArg


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where the demo writes its files and report.html.")] = Path(
        "demo-out"
    ),
    recipe: Annotated[str, typer.Option("--recipe", help="Demo recipe name or path.")] = "demo",
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these steps (repeatable).")] = None,
    overrides: OverridesArg = None,
    json_out: JsonOpt = False,
) -> None:
    """Run every fx feature end to end on embedded sample data and write an HTML report.

    Examples: [cyan]fx demo --out demo-out[/], [cyan]fx demo video.seconds=8 --only sample --only cut[/]
    """
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.console import err, print_json, print_table
    from faceexpr_cli.demo.framework import run_demo
    from faceexpr_cli.demo.report import write_report

    cfg = load_recipe(recipe, overrides or [], kind="demo")

    def show(res) -> None:
        colour = {"ok": "green", "failed": "red", "skipped": "yellow"}[res.status]
        extra = f" - {res.error}" if res.error else ""
        err.print(f"[{colour}]{res.status:>7}[/] {res.title} ({res.seconds:.1f} s){extra}", highlight=False)

    results = run_demo(out, cfg, only=only, on_step=show)
    report = write_report(results, out)
    rows = [{"step": r.name, "status": r.status, "seconds": round(r.seconds, 2), "error": r.error} for r in results]
    if json_out:
        print_json({"report": str(report), "steps": rows, "summaries": {r.name: r.summary for r in results}})
    else:
        print_table(rows, ["step", "status", "seconds", "error"], title=f"fx demo -> {report}")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
