"""Printed tables never cut a name or a path: not into a pipe (one line per row), not on a narrow terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from faceexpr_cli import console

MODELS = Path(__file__).resolve().parents[2] / "models"


def _cards() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted(MODELS.glob("*.yaml"))]


def _fx_piped(*args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "faceexpr_cli", *args], capture_output=True, text=True,
                          timeout=120, env={**environ, **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("columns", [None, "80"])
def test_models_list_through_a_pipe_shows_every_full_name(columns):
    text = _fx_piped("models", "list", **({"COLUMNS": columns} if columns else {}))
    lines = text.splitlines()  # (the licence column is shortened on purpose by `models list`; `models show` has it)
    for card in _cards():  # read from the YAML here, not from fx
        row = [line for line in lines if f" {card['name']} " in line]
        assert len(row) == 1, (card["name"], text)
        assert f" {card['task']} " in row[0] and f" {card['builder']} " in row[0]


def test_weights_list_through_a_pipe_shows_every_full_path(tmp_path):
    home = tmp_path.joinpath(*["a home folder with a long name"] * 3)
    text = _fx_piped("download", "weights", "--list", FX_HOME=str(home))
    expected = [home / "weights" / c["name"] / w["filename"] for c in _cards() for w in c.get("weights", [])
                if not w.get("package")]  # packaged files are found in site-packages instead
    assert expected
    for path in expected:
        assert str(path) in text, path


def _long_rows() -> tuple[list[dict], str, str]:
    path = "/data/" + "/".join(f"folder-number-{i:02d}" for i in range(12)) + "/clip_0001.mp4"
    prose = "a sentence that is long enough to need wrapping on any narrow terminal " * 3 + "Pneumono" * 6
    rows = [{"source": "animate-landmarks-very-long-model-name", "path": path, "error": prose, "n": 3}]
    return rows, path, prose


def test_a_long_path_into_a_file_is_whole_on_its_row(capsys):
    rows, path, prose = _long_rows()
    console.print_table(rows, ["source", "path", "error", "n"], title="t")
    text = capsys.readouterr().out
    row = [line for line in text.splitlines() if path in line]
    assert len(row) == 1 and rows[0]["source"] in row[0] and prose.strip() in row[0]
    assert "…" not in text


def test_a_narrow_terminal_folds_prose_but_never_cuts_keys(monkeypatch):
    rows, path, prose = _long_rows()
    buf = io.StringIO()
    monkeypatch.setattr(console, "out", Console(file=buf, width=60, force_terminal=True, color_system=None))
    console.print_table(rows, ["source", "path", "error", "n"])
    text = buf.getvalue()
    assert "…" not in text
    assert any(path in line and rows[0]["source"] in line for line in text.splitlines())
    cells = "".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 5)
    assert cells.replace(" ", "") == prose.replace(" ", "")  # every character of the prose, in order


def test_a_terminal_table_that_fits_stays_within_the_terminal(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(console, "out", Console(file=buf, width=60, force_terminal=True, color_system=None))
    rows = [{"name": "expression-transformer-invariant", "licence": "non-commercial research only, see the card"},
            {"name": "x", "licence": "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/clip.mp4: not a video (is it cut short?)"}]
    console.print_table(rows, ["name", "licence"])  # a message that names a path is prose: it wraps
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 60
    assert any(rows[0]["name"] in line for line in lines)


def test_values_are_printed_as_they_are_not_as_markup(capsys):
    rows = [{"name": "[/tmp/x]", "error": "[bold]not bold[/bold] and [red]"}]
    console.print_table(rows, ["name", "error"])
    text = capsys.readouterr().out
    assert "[/tmp/x]" in text and "[bold]not bold[/bold] and [red]" in text


def test_a_title_wider_than_its_table_stays_on_one_line(capsys):
    from faceexpr_cli.console import print_table

    title = "fx animate eval (landmarks): 1 video(s), 0 failed -> /some/long/folder/metrics.json"
    print_table([{"metric": "l1", "value": "0.0034"}], ["metric", "value"], title=title)
    out = capsys.readouterr().out
    assert title in out.splitlines()
    assert "0.0034" in out
