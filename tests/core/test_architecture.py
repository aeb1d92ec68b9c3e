"""The dependency direction holds: nn cores import torch only, nothing imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "faceexpr_cli"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.add("." * node.level + (node.module or ""))
    return names


def test_nn_cores_import_neither_cli_nor_pipelines():
    allowed_fx = ("faceexpr_cli.nn",)
    for path in (PKG / "nn").rglob("*.py"):
        for name in imports_of(path):
            if name.startswith("faceexpr_cli"):
                assert name.startswith(allowed_fx), f"{path.relative_to(PKG)} imports {name}"
            assert not name.startswith(("typer", "rich", "cv2", "av", "onnxruntime", "pandas")), (
                f"{path.relative_to(PKG)} imports {name}: nn modules do no I/O"
            )


def test_nothing_outside_the_cli_imports_the_cli():
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        for name in imports_of(path):
            assert name != "faceexpr_cli.cli" and not name.startswith("faceexpr_cli.cli."), f"{rel} imports the CLI"


def test_only_the_media_layer_locates_or_spawns_ffmpeg():
    """Others may pass ``media.find_ffmpeg()`` to a tool that needs it (yt-dlp), but never spawn ffmpeg."""
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "media":
            continue
        text = path.read_text(encoding="utf-8")
        assert "get_ffmpeg_exe" not in text and 'which("ffmpeg")' not in text, f"{rel} locates ffmpeg itself"
        spawns = "subprocess" in imports_of(path) and "ffmpeg" in text.replace("find_ffmpeg", "")
        assert not spawns, f"{rel} runs ffmpeg itself; use faceexpr_cli.media"
