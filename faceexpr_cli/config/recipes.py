"""Recipes: small validated YAML files that configure a command (training runs, the demo).

Each recipe names its ``kind``; a schema (a pydantic model with ``extra="forbid"``) is registered per kind in a
module under ``faceexpr_cli.config.schemas``. ``key.sub=value`` overrides apply before validation, so a typo in an
override fails the same way as a typo in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from faceexpr_cli.config.yaml_io import apply_overrides, read_yaml, validate
from faceexpr_cli.errors import ConfigError, UnknownNameError
from faceexpr_cli.paths import recipes_dir
from faceexpr_cli.registry import Registry

SCHEMAS: Registry[type[BaseModel]] = Registry("recipe kind", discover="faceexpr_cli.config.schemas")


class RecipeBase(BaseModel):
    """Base of every recipe schema: strict, and knows its kind."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)
    kind: str


def recipe_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(recipes_dir().glob("*.yaml"))}


def list_recipes() -> list[str]:
    return list(recipe_paths())


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    paths = recipe_paths()
    if str(name_or_path) not in paths:
        raise UnknownNameError("recipe", str(name_or_path), list(paths))
    return paths[str(name_or_path)]


def load_recipe(
    name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = (), kind: str | None = None
) -> RecipeBase:
    """Load, override and validate a recipe; ``kind`` checks that it is the kind of recipe a command expects."""
    path = resolve_recipe_path(name_or_path)
    source = str(path)
    data = read_yaml(path)
    data = apply_overrides(data, overrides, source)
    found = data.get("kind")
    if not found:
        raise ConfigError(f"{source}: missing key 'kind'", f"one of: {', '.join(SCHEMAS.names())}")
    if kind is not None and found != kind:
        raise ConfigError(f"{source}: is a '{found}' recipe, this command needs a '{kind}' recipe")
    schema = SCHEMAS.get(found)
    recipe = validate(schema, data, source)
    assert isinstance(recipe, RecipeBase)
    return recipe


def recipe_launch_line(path: str | Path) -> str | None:
    """The comment a recipe starts with, which shows how to launch it."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            return None
    return None


def dump_recipe(recipe: BaseModel) -> str:
    data: dict[str, Any] = recipe.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False)
