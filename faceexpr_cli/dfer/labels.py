"""Label maps are data (``label_maps.yaml``): a named map, a file (YAML/JSON list, or ``{name: index}``), or the
sorted names an annotation file uses. A run writes the map it used as ``RUN/labels.json``."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import yaml

from faceexpr_cli.errors import ConfigError, UnknownNameError

MAPS_FILE = Path(__file__).with_name("label_maps.yaml")


@lru_cache(maxsize=1)
def builtin_maps() -> dict[str, list[str]]:
    return {k: [str(x) for x in v] for k, v in yaml.safe_load(MAPS_FILE.read_text(encoding="utf-8")).items()}


def _from_data(data, source: str) -> list[str]:
    if isinstance(data, dict) and "classes" in data:
        data = data["classes"]
    if isinstance(data, dict):
        try:
            order = sorted(data.items(), key=lambda kv: int(kv[1]))
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: a label map {{name: index}} needs integer indices") from None
        if [int(v) for _, v in order] != list(range(len(order))):
            raise ConfigError(f"{source}: label indices must be 0..{len(order) - 1} without gaps")
        return [str(k) for k, _ in order]
    if isinstance(data, list) and data and all(isinstance(x, str | int) for x in data):
        names = [str(x) for x in data]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: a class name appears twice in the label map")
        return names
    raise ConfigError(f"{source}: not a label map (a list of class names, or {{name: index}})")


def load_label_map(spec: str | Path) -> list[str]:
    """Class names in index order for a built-in map name or a YAML/JSON file."""
    maps = builtin_maps()
    if str(spec) in maps:
        return list(maps[str(spec)])
    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml", ".json") and path.is_file():
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        return _from_data(data, str(path))
    raise UnknownNameError("label map", str(spec), list(maps))


def write_label_map(path: Path, classes: list[str], name: str) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"name": name, "classes": classes}, indent=1), encoding="utf-8")
    tmp.replace(path)


def read_label_map(path: Path) -> list[str]:
    try:
        return _from_data(json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable label map ({exc})") from None
