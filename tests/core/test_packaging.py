"""`pip install .` (not only editable) must carry models/ and recipes/ with the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_cards_recipes_and_entry_point(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("faceexpr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for recipe in (ROOT / "recipes").glob("*.yaml"):
        assert f"faceexpr_cli/_data/recipes/{recipe.name}" in names
    for card in (ROOT / "models").glob("*.yaml"):
        assert f"faceexpr_cli/_data/models/{card.name}" in names
    assert "faceexpr_cli/cli/app.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "fx = faceexpr_cli.cli.app:run" in text


def test_installed_layout_finds_packaged_data(tmp_path, monkeypatch):
    """The path logic prefers faceexpr_cli/_data when it exists (the wheel layout)."""
    from faceexpr_cli import paths

    fake_pkg = tmp_path / "faceexpr_cli"
    (fake_pkg / "_data" / "recipes").mkdir(parents=True)
    monkeypatch.setattr(paths, "_PACKAGE", fake_pkg)
    monkeypatch.delenv("FX_RECIPES_DIR", raising=False)
    assert paths.recipes_dir() == fake_pkg / "_data" / "recipes"
