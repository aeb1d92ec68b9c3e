"""k-fold runs (DFEW's five folds): one fine-tuning run per fold and a summary of UAR and WAR per fold with the
mean and the standard deviation. A fold whose run already finished (``metrics.json``) is read, not re-run."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from faceexpr_cli.console import log
from faceexpr_cli.dfer.metrics import summary_table
from faceexpr_cli.errors import DataError, MissingFileError
from faceexpr_cli.runlock import ensure_out_dir

ANNOTATION_SUFFIXES = (".csv", ".txt", ".parquet", ".tsv")


def find_folds(root: str | Path) -> list[tuple[int, Path, Path]]:
    """(fold, train file, test file) for every fold number that has both, e.g. ``train_1.csv`` + ``test_1.csv``,
    ``split01_train.txt`` + ``split01_test.txt`` or ``set_1/train.csv`` + ``set_1/test.csv``."""
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(root, "folds folder")
    found: dict[int, dict[str, Path]] = {}
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.suffix.lower() not in ANNOTATION_SUFFIXES:
            continue
        rel = f.relative_to(root).as_posix().lower()
        role = "train" if "train" in rel else "test" if "test" in rel else None
        numbers = re.findall(r"\d+", rel)
        if role is None or not numbers:
            continue
        found.setdefault(int(numbers[0]), {})[role] = f
    folds = [(k, v["train"], v["test"]) for k, v in sorted(found.items()) if {"train", "test"} <= set(v)]
    if not folds:
        raise DataError(f"{root}: no fold with both a train and a test annotation file",
                        "name them e.g. train_1.csv / test_1.csv (the number is the fold)")
    return folds


def run_folds(recipe_source, overrides: list[str], folds_dir: str | Path, out: str | Path,
              device: str | None = None) -> dict:
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.dfer.finetune import run

    out = ensure_out_dir(out, "--out")
    rows = []
    for k, train, test in find_folds(folds_dir):
        fold_dir = out / f"fold_{k}"
        done = fold_dir / "metrics.json"
        if done.is_file():
            log.info("fold %d: done before, reading %s", k, done)
            metrics = json.loads(done.read_text(encoding="utf-8"))
        else:
            recipe = load_recipe(recipe_source, [*overrides, f"data.train={train}", f"data.test={test}"],
                                 kind="finetune-dfer")
            log.info("fold %d: %s -> %s", k, train.name, fold_dir)
            metrics = run(recipe, fold_dir, resume=fold_dir.joinpath("checkpoints").is_dir(), device=device).final
        rows.append({"fold": k, "uar": metrics["uar"], "war": metrics["war"], "clips": metrics.get("clips")})
    summary = summary_table(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["fold", "uar", "war"])
        for r in rows:
            w.writerow([r["fold"], f"{r['uar']:.4f}", f"{r['war']:.4f}"])
        w.writerow(["mean", f"{summary['uar_mean']:.4f}", f"{summary['war_mean']:.4f}"])
        w.writerow(["std", f"{summary['uar_std']:.4f}", f"{summary['war_std']:.4f}"])
    return summary
