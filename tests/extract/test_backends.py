"""Torch (the run) and ONNX (its export) give the same tokens through the whole pipeline; the outputs' layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceexpr_cli.extract import (
    ExpressionModel,
    ExtractOptions,
    extract_features,
    read_features,
    read_index,
    read_tokens,
)


def _float_lists(node):
    """Every list of non-integer numbers anywhere in a JSON document."""
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        if node and all(isinstance(v, float) for v in node):
            yield node
        for v in node:
            yield from _float_lists(v)


@pytest.fixture(scope="module")
def both(cut_video, tiny_run, tiny_export, tmp_path_factory):
    """The cut video through each backend: {backend: (result, json document, npz arrays)}."""
    runs = {}
    for backend, model in (("torch", tiny_run), ("onnx", tiny_export)):
        out = tmp_path_factory.mktemp(f"feats_{backend}")
        res = extract_features([cut_video], model, out, ExtractOptions(batch_size=16), backend=backend)
        row = res.rows[0]
        doc = json.loads((out / row["json"]).read_text())
        runs[backend] = (res, doc, read_features(out / row["npz"]))
    return runs


def test_onnx_tokens_match_torch_within_the_card_tolerance(both, tiny_export):
    (_, dt, nt), (_, do, no) = both["torch"], both["onnx"]
    assert dt["model"]["backend"] == "torch" and do["model"]["backend"] == "onnx"
    assert do["model"]["providers"] == ["CPUExecutionProvider"]
    np.testing.assert_array_equal(nt["frame_ind"], no["frame_ind"])  # same faces, same crops
    np.testing.assert_array_equal(nt["box"], no["box"])
    atol = ExpressionModel.load(tiny_export).atol  # the expression part's tolerance in its card
    assert atol == pytest.approx(1e-4)
    diff = np.abs(nt["tokens"] - no["tokens"])
    assert diff.max() <= atol, diff.max()
    assert nt["tokens"].shape == (len(nt["frame_ind"]), 64)  # the run's token size
    np.testing.assert_allclose(np.linalg.norm(no["tokens"], axis=1), 1.0, atol=1e-5)
    # tokens do depend on the face: the two people differ more than neighbouring frames of one
    tok, tid = no["tokens"], no["traj"]
    within = np.abs(np.diff(tok[tid == 0], axis=0)).mean()
    across = np.abs(tok[tid == 0].mean(0) - tok[tid == tid.max()].mean(0)).mean()
    assert across > 2 * within


def test_json_has_the_seed_layout_and_matches_the_npz(both, cut_video):
    res, doc, arrays = both["onnx"]
    assert doc["video_path"] == str(cut_video.resolve()) and doc["label"] is None
    assert doc["fps"] == 25 and (doc["width"], doc["height"]) == (320, 256) and doc["token_dim"] == 64
    flat = [e for traj in doc["traj"] for e in traj]
    assert set(flat[0]) == {"frame_ind", "time", "box", "score"}  # no `feats` without --json-floats
    assert [e["frame_ind"] for e in flat] == arrays["frame_ind"].tolist()
    assert doc["no_face_frames"] == arrays["no_face_frames"].tolist()
    assert len(doc["trajectories"]) == len(doc["traj"]) == int(arrays["traj"].max()) + 1
    row = read_index(res.index).iloc[0]
    assert row["status"] == "ok" and row["tokens"] == len(flat) and row["trajectories"] == len(doc["traj"])
    assert row["frames"] == 95 and row["sampled_frames"] == 95
    # faces on screen in 80 of the 95 frames (SEGMENTS); a frame at each side of the gap may go either way
    assert row["face_frames"] == len(np.unique(arrays["frame_ind"])) and 78 <= row["face_frames"] <= 80
    stats = json.loads((res.out / "stats.json").read_text())
    assert stats["videos"] == {"ok": 1} and stats["tokens"] == len(flat) and stats["model"]["input_size"] == 56
    assert not list(res.out.rglob("*.part"))  # atomic writes leave no temporaries


def test_tokens_are_in_a_parquet_table_equal_to_the_npz_and_the_default_json_holds_no_float_arrays(both):
    import pyarrow.parquet as pq

    res, doc, arrays = both["onnx"]
    row = res.rows[0]
    assert doc["parquet"] == row["parquet"].rsplit("/", 1)[-1] and row["parquet"].endswith(".parquet")
    table = pq.read_table(res.out / row["parquet"])  # read with pyarrow alone, not fx's reader
    assert table.num_rows == len(arrays["tokens"]) == row["tokens"]
    tokens = np.array(table.column("tokens").to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(tokens, arrays["tokens"])  # exactly the .npz's float32 values
    assert tokens.shape[1] == doc["token_dim"] == 64
    for name in ("traj", "track_id", "frame_ind", "time"):
        np.testing.assert_array_equal(table.column(name).to_numpy(), arrays[name])
    np.testing.assert_array_equal(np.array(table.column("box").to_pylist(), np.float32), arrays["box"])
    back = read_tokens(res.out / row["parquet"])  # fx's reader gives the .npz's arrays back
    assert back["tokens"].dtype == np.float32 and np.array_equal(back["tokens"], arrays["tokens"])
    # the JSON: boxes (4 numbers) are its only float lists, so no token array is in it
    assert max(len(x) for x in _float_lists(doc)) == 4
    assert not any("feats" in e for traj in doc["traj"] for e in traj)
