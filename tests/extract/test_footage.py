"""fx extract-feats on phone and camera footage: a VFR HEVC .mov (once dropped whole: "the second decode ended
early") and an edit-list MP4 (once refused as truncated). Frame times are checked against the footage's own."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.extract import ExtractOptions, extract_features


@pytest.fixture(scope="module")
def footage_run(phone_vfr, edit_list_video, tiny_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("extract_footage")
    res = extract_features([phone_vfr.path, edit_list_video.path], tiny_export, out, ExtractOptions(stride=2))
    return out, {r["source"]: r for r in res.rows}


@pytest.mark.parametrize("which", ["phone_vfr", "edit_list_video"])
def test_every_sampled_frame_has_tokens_at_its_real_time(footage_run, which, request):
    footage = request.getfixturevalue(which)
    out, rows = footage_run
    row = rows[str(footage.path)]
    assert row["status"] == "ok", row["error"]
    z = np.load(out / row["npz"])
    sampled = np.arange(0, footage.n_frames, 2)
    assert row["sampled_frames"] == len(sampled) and row["frames"] == footage.n_frames
    assert sorted(z["frame_ind"].tolist()) == sampled.tolist()  # the face is in every frame of the footage
    np.testing.assert_allclose(z["time"], footage.frame_times[z["frame_ind"]], atol=1e-3)
    assert np.isfinite(z["tokens"]).all() and len(z["tokens"]) == len(sampled)
