"""`fx download weights`: model cards (written to a temp FX_MODELS_DIR) whose weights live on the loopback server."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from dlhelpers import payload, sha
from faultserver import Route

from faceexpr_cli.cli.app import main
from faceexpr_cli.weights import cache_path, find_weights

KB = 1024


@pytest.fixture
def cards(tmp_path, monkeypatch, server):
    """Three cards: one with good weights, one whose checksum is wrong, one with no weights."""
    good, other = payload(300 * KB, seed=1), payload(10 * KB, seed=2)
    server.add("/w/good.safetensors", Route(data=good, drop_after=100 * KB, drops=1))
    server.add("/w/other.bin", Route(data=other))
    models = tmp_path / "models"
    models.mkdir()

    def card(name, weights):
        data = {"name": name, "builder": "none", "description": "test card", "task": "test", "licence": "MIT",
                "weights": weights}
        (models / f"{name}.yaml").write_text(yaml.safe_dump(data))

    card("tinynet", [{"name": "main", "url": server.url("/w/good.safetensors"), "filename": "tinynet.safetensors",
                      "sha256": sha(good), "size": len(good), "licence": "CC-BY-NC-4.0", "note": "research only"}])
    card("badsum", [{"name": "main", "url": server.url("/w/other.bin"), "filename": "other.bin", "sha256": "0" * 64,
                     "licence": "Apache-2.0"}])
    card("noweights", [])
    monkeypatch.setenv("FX_MODELS_DIR", str(models))
    return {"good": good}


def test_download_verify_licence_and_path(cards, server, capsys):
    code = main(["download", "weights", "tinynet"])
    captured = capsys.readouterr()
    path = cache_path("tinynet")
    assert code == 0 and captured.out.strip() == str(path)
    assert "CC-BY-NC-4.0" in captured.err and "research only" in captured.err and "sha256 verified" in captured.err
    assert sha(path.read_bytes()) == sha(cards["good"]) and find_weights("tinynet") == path
    assert [h.range for h in server.hits_for("/w/good.safetensors")] == [None, f"bytes={100 * KB}-"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["tinynet.safetensors", "tinynet.safetensors.verified"]

    code = main(["download", "weights", "tinynet", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data[0]["status"] == "cached" and len(server.hits_for("/w/good.safetensors")) == 2


def test_list_shows_cached_and_missing(cards, capsys):
    assert main(["download", "weights", "tinynet"]) == 0
    capsys.readouterr()
    assert main(["download", "weights", "--list", "--json"]) == 0
    rows = {r["card"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tinynet"]["status"] == "cached" and rows["badsum"]["status"] == "missing"
    assert "noweights" not in rows


def test_checksum_mismatch_and_no_weights_are_one_line_errors(cards, capsys):
    assert main(["download", "weights", "badsum"]) == 1
    err = capsys.readouterr().err
    assert "checksum" in err and "other.bin" in err and "Traceback" not in err
    assert not cache_path("badsum").parent.exists() or not any(cache_path("badsum").parent.iterdir())
    assert main(["download", "weights", "noweights"]) == 1
    assert "lists no weight sources" in capsys.readouterr().err
    assert main(["download", "weights"]) == 2


def test_packaged_weights_need_no_download(capsys):
    """dlib's model files ship inside face-recognition-models: found there, listed as packaged, never fetched."""
    from faceexpr_cli.cli.app import main
    from faceexpr_cli.weights import find_weights

    path = find_weights("face-dlib", source="landmarks68")
    assert path.name == "shape_predictor_68_face_landmarks.dat" and "face_recognition_models" in str(path)
    code = main(["download", "weights", "face-dlib", "--source", "landmarks68"])
    cap = capsys.readouterr()
    assert code == 0 and "ships in an installed package" in cap.err
    assert cap.out.strip() == str(path)


def test_corrupted_cache_is_refused_by_find_weights_and_fetched_again_with_a_warning(cards, server, capsys):
    from faceexpr_cli.errors import WeightsNotFoundError

    assert main(["download", "weights", "tinynet"]) == 0
    path = cache_path("tinynet")
    assert find_weights("tinynet") == path
    hits = len(server.hits_for("/w/good.safetensors"))
    damaged = bytearray(path.read_bytes())
    damaged[1000:1010] = b"\0" * 10  # same size, other bytes: only the sha256 can tell
    path.write_bytes(bytes(damaged))
    with pytest.raises(WeightsNotFoundError, match="sha256 mismatch") as info:
        find_weights("tinynet")  # what other commands call: a damaged file is never loaded
    assert "fx download weights tinynet" in info.value.one_line()
    capsys.readouterr()
    assert main(["download", "weights", "tinynet"]) == 0
    err = capsys.readouterr().err
    assert "does not match" in err and "downloaded" in err
    assert len(server.hits_for("/w/good.safetensors")) > hits
    assert sha(path.read_bytes()) == sha(cards["good"]) and find_weights("tinynet") == path


def test_force_really_downloads_again(cards, server, capsys):
    assert main(["download", "weights", "tinynet"]) == 0
    path = cache_path("tinynet")
    good = cards["good"]
    path.with_name(path.name + ".part").write_bytes(good[: 50 * KB])  # a leftover part: --force ignores it
    hits = len(server.hits_for("/w/good.safetensors"))
    capsys.readouterr()
    assert main(["download", "weights", "tinynet", "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "downloaded"
    deadline = time.monotonic() + 5  # the server thread logs a request after its last byte, maybe after the client
    while len(server.hits_for("/w/good.safetensors")) <= hits and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(h.status, h.range, h.sent) for h in server.hits_for("/w/good.safetensors")[hits:]] == [(200, None, len(good))]
    assert sha(path.read_bytes()) == sha(good)


def test_manifest_force_fetches_the_new_bytes(server, tmp_path, capsys):
    from dlhelpers import write_csv

    route = Route(data=payload(50 * KB, seed=7))
    server.add("/data.bin", route)
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/data.bin")}])
    out = tmp_path / "out"
    assert main(["download", str(manifest), "--out", str(out)]) == 0
    route.data = payload(50 * KB, seed=8)  # the file changes on the server (same size)
    assert main(["download", str(manifest), "--out", str(out)]) == 0  # a plain re-run skips it
    assert sha((out / "data.bin").read_bytes()) != sha(route.data) and len(server.hits_for("/data.bin")) == 1
    assert main(["download", str(manifest), "--out", str(out), "--force"]) == 0
    assert sha((out / "data.bin").read_bytes()) == sha(route.data) and len(server.hits_for("/data.bin")) == 2

    # --force with a resumable .part of this very file left by an interrupted run: still all from the server
    route.drop_after, route.drops = 20 * KB, 1
    (out / "data.bin").unlink()
    assert main(["download", str(manifest), "--out", str(out), "--retries", "0"]) == 1
    assert (out / "data.bin.part").stat().st_size == 20 * KB
    assert main(["download", str(manifest), "--out", str(out), "--force"]) == 0
    last = server.hits_for("/data.bin")[-1]
    assert last.range is None and last.sent == len(route.data) and sha((out / "data.bin").read_bytes()) == sha(route.data)
