"""The fx command lines of README.md stay true: each one parses as written (placeholders filled in), and the cheap
ones run."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from faceexpr_cli.cli.app import cli, main

README = Path(__file__).resolve().parents[2] / "README.md"
# Placeholder -> a value; NAME depends on the command group it follows.
PLACEHOLDERS = {"MANIFEST": "urls.txt", "DEST": "dest", "VIDEOS...": "talk.mp4", "VIDEOS": "talk.mp4", "DIR": "out",
                "RUN_DIR": "runs/joint-tiny", "CARD": "fomm-vox256", "RUN": "runs/joint-tiny", "EXPORT": "exported",
                "IMG": "a.png", "VIDEO": "b.mp4", "CLIPS": "clips/", "data.path=...": "data.path=clips/"}
NAMES = {"models": "fomm-vox256", "recipes": "demo", "weights": "dinov2-vits14", "download": "dinov2-vits14"}
RUN_PREFIXES = ("fx doctor", "fx models", "fx recipes")


def readme_commands(text: str) -> list[str]:
    """fx lines of code blocks (comments cut) and fx spans of the command table, alternatives (a|b) expanded,
    optional [..] groups left out, placeholders filled in."""
    lines = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, re.S):
        lines += [ln.split("#")[0].strip() for ln in block.splitlines() if ln.strip().startswith("fx ")]
    for row in text.splitlines():
        if row.startswith("| `fx "):
            first = row.replace("\\|", "\x00").split("|")[1]
            lines += [s.replace("\x00", "|") for s in re.findall(r"`(fx [^`]+)`", first)]
    out = []
    for line in lines:
        line = re.sub(r"\s*\[[^\]]*\]", "", line)
        words = [w.split("|") for w in line.split()]
        for combo in itertools.product(*words):
            filled = []
            for w in combo:
                if w == "NAME" and filled[-1] == "list":  # `fx models list|show NAME`: NAME belongs to show
                    continue
                filled.append(NAMES.get(filled[-1] if filled[-1] in NAMES else filled[1]) if w == "NAME"
                              else PLACEHOLDERS.get(w, w))
            out.append(" ".join(filled))
    return list(dict.fromkeys(out))


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def parse(args: list[str]):
    command, ctx, name, rest = cli(), None, "fx", list(args)
    while True:
        ctx = command.make_context(name, rest, parent=ctx)
        left = [*getattr(ctx, "_protected_args", []), *ctx.args] if hasattr(command, "commands") else []
        if not left:
            return ctx
        name, command, rest = command.resolve_command(ctx, left)


def test_the_readme_has_its_command_rows():
    assert len(COMMANDS) >= 15
    assert "fx export-onnx runs/joint-tiny --out out" in COMMANDS
    assert not [c for c in COMMANDS if re.search(r"\b[A-Z_]{3,}\b|\.\.\.", c)], "a placeholder left unfilled"


@pytest.mark.parametrize("line", COMMANDS)
def test_every_readme_command_parses(line):
    import shlex

    ctx = parse(shlex.split(line)[1:])
    assert ctx.command is not None


def test_cheap_readme_commands_run(tmp_path, monkeypatch, capsys):
    import shlex

    monkeypatch.chdir(tmp_path)
    ran = [c for c in COMMANDS if c.startswith(RUN_PREFIXES)]
    assert len(ran) >= 4
    for line in ran:
        code = main(shlex.split(line)[1:])
        assert code == 0, f"{line}: {capsys.readouterr().err}"
