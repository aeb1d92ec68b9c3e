"""Every command's --help: flags without a metavar, honest usage lines, and two or more examples that parse (and,
for the cheap ones, run) exactly as written."""

from __future__ import annotations

import re
import shlex

import pytest
import typer

from faceexpr_cli.cli.app import cli, main

# Commands of other modules that still show fewer than two examples (the lead empties this set).
TODO_FEWER_EXAMPLES: set[tuple[str, ...]] = set()
# Examples run for real here (cheap); every other example is parsed only.
RUN_PREFIXES = ("fx doctor", "fx models", "fx recipes", "fx download weights --list",
                "fx animate -s a.png -d b.mp4 -o r.mp4 --engine fomm --config vox-128.yaml --checkpoint random")


def _walk(command, path=()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(cli()))


def examples(help_text: str) -> list[str]:
    """The [cyan]...[/] spans of a help text, whitespace joined (a long example wraps in the docstring)."""
    return [" ".join(e.split()) for e in re.findall(r"\[cyan\](.+?)\[/\]", help_text or "", re.S)]


def fx_args(example: str) -> list[str]:
    words = shlex.split(example)
    if words[0] == "torchrun":  # torchrun ... -m faceexpr_cli ARGS
        return words[words.index("faceexpr_cli") + 1:]
    assert words[0] == "fx", example
    return words[1:]


def parse(args: list[str]):
    """Click's own parsing of ``fx ARGS`` down to the command that would run, without running it: unknown
    commands or options, missing arguments and values that fail their type or range raise."""
    command, ctx, name, rest = cli(), None, "fx", list(args)
    while True:
        ctx = command.make_context(name, rest, parent=ctx)
        if not hasattr(command, "commands"):
            return ctx
        left = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not left:  # a group that runs its own callback (fx animate -s ...)
            return ctx
        name, command, rest = command.resolve_command(ctx, left)


ALL_EXAMPLES = [(path, ex) for path, cmd in COMMANDS.items() for ex in examples(cmd.help)]


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(("fx", *p)))
def test_help_has_examples_and_flags_show_no_metavar(path, capsys):
    assert main([*path, "--help"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text
    if path not in TODO_FEWER_EXAMPLES:
        assert len(examples(COMMANDS[path].help)) >= 2, f"fx {' '.join(path)} --help shows fewer than 2 examples"


def test_animate_usage_is_honest(capsys):
    assert main(["animate", "--help"]) == 0
    text = capsys.readouterr().out
    assert "Usage: fx animate [OPTIONS]" in text and "COMMAND [ARGS]" not in text
    assert "eval" in text.split("Commands")[-1]  # the subcommand is listed
    assert main(["animate", "eval", "--help"]) == 0
    assert "Usage: fx animate eval [OPTIONS]" in capsys.readouterr().out


def test_flags_take_no_value_but_options_keep_their_type(capsys):
    assert main(["export-onnx", "--help"]) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines() if line.startswith("│ ")
            and len(line.split()) > 2 and line.split()[1].startswith("--")}
    assert "<int" in rows["--opset"] and "<" not in rows["--fp16"].split("Also")[0]


@pytest.mark.parametrize(("path", "example"), ALL_EXAMPLES, ids=[e for _, e in ALL_EXAMPLES])
def test_every_example_parses(path, example):
    args = fx_args(example)
    ctx, names = parse(args), []
    while ctx.parent is not None:
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    assert all(n in args or n == "fetch" for n in names), (example, names)  # the commands it names (fetch: implied)


def _inputs(tmp_path):
    """The files the run examples name, generated here."""
    import yaml

    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait, make_talking_head

    write_image(tmp_path / "a.png", load_portrait("astronaut")[0])
    make_talking_head(tmp_path / "b.mp4", seconds=0.2, width=160, height=128, face_fraction=0.6)
    fixture = yaml.safe_load((__import__("pathlib").Path(__file__).parents[1] / "fixtures" / "fomm" /
                              "tiny_config.yaml").read_text())
    fixture["dataset_params"] = {"frame_shape": [128, 128, 3]}
    (tmp_path / "vox-128.yaml").write_text(yaml.safe_dump(fixture))


RUN = [ex for _, ex in ALL_EXAMPLES if ex.startswith(RUN_PREFIXES)]


def test_cheap_examples_run_for_real(tmp_path, monkeypatch, capsys):
    assert len(RUN) >= 10
    monkeypatch.chdir(tmp_path)
    _inputs(tmp_path)
    for example in RUN:
        extra = ["--max-frames", "3"] if example.startswith("fx animate") else []
        code = main([*fx_args(example), *extra])
        err = capsys.readouterr().err
        assert code == 0, f"{example}: exit {code}: {err}"
        assert "Traceback" not in err
    assert (tmp_path / "r.mp4").is_file()


def test_parse_rejects_what_the_cli_rejects():
    """The parser the example tests use is strict: a misspelt option or a missing argument fails."""
    with pytest.raises(Exception, match="No such option|no such option"):
        parse(["export-onnx", "x", "--out", "o", "--fp17"])
    with pytest.raises(Exception, match="Missing"):
        parse(["animate", "eval"])
    with pytest.raises(typer.Exit):
        parse(["models", "--help"])
