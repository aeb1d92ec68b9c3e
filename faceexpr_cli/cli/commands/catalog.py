"""`fx models` and `fx recipes`: browse the model cards and recipes that ship with fx."""

from __future__ import annotations

from typing import Annotated

import typer

from faceexpr_cli.cli.options import JsonOpt, OverridesArg

models_app = typer.Typer(help="Model cards: what each model is, its inputs, outputs, ONNX spec and weights.\n\n"
                          "Examples: [cyan]fx models list[/], [cyan]fx models show fomm-vox256[/]", no_args_is_help=True)
recipes_app = typer.Typer(help="Recipes: validated YAML that configures training runs and the demo.\n\n"
                           "Examples: [cyan]fx recipes list[/], [cyan]fx recipes show demo video.seconds=2[/]",
                           no_args_is_help=True)


def _short(text: str, width: int = 28) -> str:
    """The first clause of a licence note; `fx models show` has the whole text."""
    first = text.split(";")[0].split(". ")[0].strip()
    if first.count("(") > first.count(")"):
        first = first.split(" (")[0]
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


@models_app.command("list")
def models_list(json_out: JsonOpt = False) -> None:
    """List model cards.

    Examples: [cyan]fx models list[/], [cyan]fx models list --json[/]
    """
    from faceexpr_cli.config.cards import list_cards, load_card
    from faceexpr_cli.console import print_json, print_table

    rows = []
    for name in list_cards():
        card = load_card(name)
        rows.append({"name": name, "task": card.task, "builder": card.builder, "licence": _short(card.licence),
                     "weights": len(card.weights), "onnx parts": len(card.onnx.parts) if card.onnx else 0})
    if json_out:
        print_json(rows)
    else:
        print_table(rows, ["name", "task", "builder", "licence", "weights", "onnx parts"], title="model cards")


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Card name (models/NAME.yaml) or a path to a card.")],
    overrides: OverridesArg = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one card, validated, with optional key=value overrides.

    Examples: [cyan]fx models show fomm-vox256[/], [cyan]fx models show fomm-vox256 input.size=128 --json[/]
    """
    import yaml

    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.console import out, print_json

    card = load_card(name, overrides or [])
    data = card.model_dump(mode="json", exclude_none=True)
    if json_out:
        print_json(data)
    else:
        out.print(yaml.safe_dump(data, sort_keys=False), end="")


@recipes_app.command("list")
def recipes_list(json_out: JsonOpt = False) -> None:
    """List recipes with the command that launches each.

    Examples: [cyan]fx recipes list[/], [cyan]fx recipes list --json[/]
    """
    from faceexpr_cli.config.recipes import recipe_launch_line, recipe_paths
    from faceexpr_cli.config.yaml_io import read_yaml
    from faceexpr_cli.console import print_json, print_table

    rows = [
        {"name": name, "kind": read_yaml(path).get("kind"), "launch": recipe_launch_line(path)}
        for name, path in recipe_paths().items()
    ]
    if json_out:
        print_json(rows)
    else:
        print_table(rows, ["name", "kind", "launch"], title="recipes")


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="Recipe name (recipes/NAME.yaml) or a path to a recipe.")],
    overrides: OverridesArg = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a recipe resolved with its defaults and overrides.

    Examples: [cyan]fx recipes show demo video.seconds=2[/], [cyan]fx recipes show fomm-tiny --json[/]
    """
    from faceexpr_cli.config.recipes import dump_recipe, load_recipe
    from faceexpr_cli.console import out, print_json

    recipe = load_recipe(name, overrides or [])
    if json_out:
        print_json(recipe.model_dump(mode="json"))
    else:
        out.print(dump_recipe(recipe), end="")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.add_typer(recipes_app, name="recipes")
