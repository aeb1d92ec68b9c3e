"""What an ``fx crop`` output folder was made with, and clearing it.

``run.json`` records the options that shape the clips and their rows (``CropOptions.settings()``). A run into
a folder that holds results made with other settings is refused (one line naming what differs), since its
skipped videos would not match what the new run asks for; ``--overwrite`` clears the folder's crop outputs
first. Folders from before ``run.json`` are checked against the options their ``stats.json`` recorded.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from faceexpr_cli.crop import manifest as mf
from faceexpr_cli.errors import UsageError

RUN_NAME = "run.json"
FORMAT = "fx-crop/1"
OUTPUT_DIRS = ("clips", "manifest")
OUTPUT_FILES = ("manifest.parquet", "stats.json", RUN_NAME)


def _normal(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=str, sort_keys=True))


def has_results(out: Path) -> bool:
    return any(mf.parts_dir(out).glob("*.parquet")) or (out / "manifest.parquet").is_file()


def previous_settings(out: Path) -> dict[str, Any] | None:
    run = out / RUN_NAME
    try:
        if run.is_file():
            return json.loads(run.read_text(encoding="utf-8"))["settings"]
        stats = out / "stats.json"
        if stats.is_file():
            options = dict(json.loads(stats.read_text(encoding="utf-8"))["options"])
            options.pop("max_pixels", None)
            return options
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{out}: cannot read {RUN_NAME} (the settings of the crops there)",
                         "use --overwrite to start again, or a new --out") from None
    return None


def _show(v: Any) -> str:
    return json.dumps(v, default=str)


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to add to results made with other settings; record this run's settings."""
    wanted = _normal(settings)
    before = previous_settings(out) if has_results(out) else None
    if before is not None and _normal(before) != wanted:
        before = _normal(before)
        changed = [f"{k} {_show(before.get(k))} -> {_show(wanted.get(k))}"
                   for k in sorted(set(before) | set(wanted)) if before.get(k) != wanted.get(k)]
        raise UsageError(f"{out} holds crops made with other settings ({'; '.join(changed)})",
                         "use --overwrite to replace them, or a new --out")
    write_json(out / RUN_NAME, {"format": FORMAT, "settings": wanted})


def clear(out: Path) -> None:
    """Remove what earlier crop runs wrote here (clips, manifest, stats, run.json), nothing else."""
    for name in OUTPUT_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    remove_partials(out)


def remove_partials(out: Path) -> None:
    """Temporary files of runs that did not finish (the run holds the folder's lock, so none is live)."""
    found = [*out.glob(".*.part"), *(p for d in OUTPUT_DIRS for p in (out / d).rglob(".*.part"))]
    for p in found:
        if p.is_file():
            p.unlink(missing_ok=True)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
