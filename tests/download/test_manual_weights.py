"""Weights that only a person can fetch (fomm-vox256's Google Drive folder): `fx download weights` prints where to
get the file and where to put it, exits 1, and never touches the network; once the file is there it is found."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
import yaml

from faceexpr_cli.cli.app import main
from faceexpr_cli.config.cards import WeightSource
from faceexpr_cli.errors import WeightsNotFoundError
from faceexpr_cli.weights import by_hand, find_weights

CARD = Path(__file__).resolve().parents[2] / "models" / "fomm-vox256.yaml"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve a name, open a connection or start the fetcher fails the test."""

    def refuse(*args, **kwargs):
        pytest.fail(f"a network call was made: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("faceexpr_cli.download.weights.run_pool", refuse)
    monkeypatch.setattr("faceexpr_cli.download.weights.Fetcher", refuse)


def _source() -> dict:
    return yaml.safe_load(CARD.read_text())["weights"][0]


def _target(card: str, filename: str) -> Path:
    return Path(os.environ["FX_HOME"]) / "weights" / card / filename


def test_fomm_weights_print_where_to_get_and_put_them(no_network, capsys):
    ws = _source()
    target = _target("fomm-vox256", ws["filename"])
    code = main(["download", "weights", "fomm-vox256"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert f"get it from: {ws['url']}" in captured.err
    assert f"file name:   {ws['filename']}" in captured.err
    assert f"put it at:   {target}" in captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "fetched by hand" in errors[0] and str(target) in errors[0]
    assert "Traceback" not in captured.err and not target.exists() and not target.parent.exists()


def test_json_says_manual_with_the_instructions(no_network, capsys):
    ws = _source()
    code = main(["download", "weights", "fomm-vox256", "--json"])
    rows = json.loads(capsys.readouterr().out)
    target = _target("fomm-vox256", ws["filename"])
    assert code == 1 and [r["status"] for r in rows] == ["manual"]
    assert rows[0]["path"] == str(target) and rows[0]["url"] == ws["url"]
    assert ws["url"] in rows[0]["instructions"] and str(target) in rows[0]["instructions"]


def test_a_file_put_there_by_hand_is_found_and_kept(no_network, capsys):
    target = _target("fomm-vox256", _source()["filename"])
    target.parent.mkdir(parents=True)
    target.write_bytes(b"a checkpoint a person downloaded")
    for args in (["download", "weights", "fomm-vox256"], ["download", "weights", "fomm-vox256", "--force"]):
        assert main(args) == 0
        assert capsys.readouterr().out.strip() == str(target)
    assert target.read_bytes() == b"a checkpoint a person downloaded"  # --force did not delete it
    assert find_weights("fomm-vox256") == target


def test_other_commands_say_the_same_when_the_file_is_missing(no_network, capsys):
    ws = _source()
    with pytest.raises(WeightsNotFoundError) as info:
        find_weights("fomm-vox256")
    hint = info.value.one_line()
    assert ws["url"] in hint and str(_target("fomm-vox256", ws["filename"])) in hint
    assert "run `fx download weights" not in hint  # it would only print these instructions again
    assert main(["download", "weights", "--list", "--json"]) == 0
    rows = {r["card"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fomm-vox256"]["status"] == "by hand"


def test_a_wrong_file_is_reported_not_deleted(no_network, tmp_path, monkeypatch, capsys):
    data = b"the real weights"
    models = tmp_path / "models"
    models.mkdir()
    source = {"name": "main", "url": "https://drive.google.com/file/d/1AbCdEf/view?usp=sharing",
              "filename": "net.pth", "sha256": hashlib.sha256(data).hexdigest(), "licence": "MIT"}
    (models / "handnet.yaml").write_text(yaml.safe_dump({"name": "handnet", "builder": "none", "description": "t",
                                                         "task": "t", "licence": "MIT", "weights": [source]}))
    monkeypatch.setenv("FX_MODELS_DIR", str(models))
    target = _target("handnet", "net.pth")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"something else")
    assert main(["download", "weights", "handnet", "--force"]) == 1
    assert "not the card's file" in capsys.readouterr().err
    assert target.read_bytes() == b"something else"
    target.write_bytes(data)
    assert main(["download", "weights", "handnet"]) == 0
    assert capsys.readouterr().out.strip() == str(target)


@pytest.mark.parametrize(("url", "site"), [
    ("https://drive.google.com/drive/folders/1PyQJmkdCsAkOYwUyaj_l-l0as-iLDgeH", "Google Drive"),
    ("https://drive.google.com/file/d/1AbC/view", "Google Drive"),
    ("https://disk.yandex.ru/d/lEw8uRm140L_eQ", "Yandex Disk"),
    ("https://pan.baidu.com/s/1abc", "Baidu Netdisk"),
    ("https://huggingface.co/facebook/dinov2-small/resolve/main/model.safetensors", None),
    ("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", None),
    ("https://example.org/drive.google.com/drive/folders/x", None),
])
def test_share_pages_are_told_apart_from_files(url, site):
    assert by_hand(WeightSource(name="w", url=url, filename="f", licence="MIT")) == site
