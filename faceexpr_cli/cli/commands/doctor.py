from __future__ import annotations

import typer

from faceexpr_cli.cli.options import JsonOpt


def doctor(json_out: JsonOpt = False) -> None:
    """Check Python, torch, ONNX Runtime, ffmpeg, face backends and the model cache.

    Exits non-zero when something fx needs is missing, with the fix in one line.

    Examples: [cyan]fx doctor[/], [cyan]fx doctor --json[/]
    """
    from faceexpr_cli.console import err, out, print_json
    from faceexpr_cli.doctor import run_checks

    checks = run_checks()
    failed = [c for c in checks if c.required and not c.ok]
    if json_out:
        print_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="fx doctor")
        for col in ("check", "status", "detail"):
            table.add_column(col)
        for c in checks:
            status = "[green]ok[/]" if c.ok else ("[red]missing[/]" if c.required else "[yellow]optional[/]")
            table.add_row(c.name, status, escape(c.detail))
        out.print(table)
    for c in failed:
        err.print(f"[red]{c.name}[/]: {c.detail}. Fix: {c.fix}", highlight=False)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
