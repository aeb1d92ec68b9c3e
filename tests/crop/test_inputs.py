"""Inputs: files, directories (video extensions only, the output folder left out) and manifests."""

from __future__ import annotations

import pandas as pd
import pytest

from faceexpr_cli.crop import expand_inputs
from faceexpr_cli.errors import DataError, MissingFileError


def test_directories_manifests_and_the_output_folder(tmp_path):
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.MOV", "readme.md", ".hidden.mp4"):
        (videos / name).write_bytes(b"x")
    out = videos / "crops"
    (out / "clips").mkdir(parents=True)
    (out / "clips" / "t000_00.mp4").write_bytes(b"x")
    items = expand_inputs([videos], exclude=out)
    names = {i.source.rsplit("/", 1)[-1]: i.skip for i in items}
    assert names == {"a.mp4": None, "b.MOV": None, "readme.md": "not a video file (.md)"}

    pd.DataFrame({"video": ["videos/a.mp4", str(videos / "sub" / "b.MOV"), "videos/a.mp4"]}).to_csv(
        tmp_path / "list.csv", index=False)
    (tmp_path / "list.txt").write_text("# one per line\nvideos/a.mp4\n\n")
    from_csv = expand_inputs([tmp_path / "list.csv"])
    assert [i.source for i in from_csv] == [str((videos / "a.mp4").resolve()), str((videos / "sub/b.MOV").resolve())]
    assert [i.source for i in expand_inputs([tmp_path / "list.txt", videos / "a.mp4"])] == [from_csv[0].source]
    assert from_csv[0].source_id == expand_inputs([videos / "a.mp4"])[0].source_id


def test_bad_manifests_and_missing_inputs(tmp_path):
    pd.DataFrame({"name": ["a.mp4"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError) as exc:
        expand_inputs([tmp_path / "bad.csv"])
    assert "no video column" in exc.value.one_line() and "path" in exc.value.one_line()
    with pytest.raises(MissingFileError):
        expand_inputs([tmp_path / "nope.mp4"])


@pytest.mark.parametrize("given", [["missing.mp4"], ["real.mp4", "missing.mp4"]])
def test_a_missing_input_is_one_line_and_leaves_no_out_folder(given, tmp_path, capsys, monkeypatch):
    from faceexpr_cli.cli.app import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "real.mp4").write_bytes(b"x")  # never opened: the check comes before any work
    assert main(["crop", *given, "--out", "X"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == ["error: input not found: missing.mp4 (check the path)"]
    assert not (tmp_path / "X").exists()
