"""Backends accept any RGB view a pipeline hands them: mirrored, cropped or rotated frames are strided arrays."""

from __future__ import annotations

import numpy as np

from faceexpr_cli.face import get_backend
from faceexpr_cli.samples import load_portrait


def test_dlib_embeds_a_mirrored_view_like_a_copy():
    img, _ = load_portrait("astronaut")
    view = img[:, ::-1]
    assert not view.flags["C_CONTIGUOUS"]
    backend = get_backend("dlib")
    from_view = backend.analyze(view, landmarks=True, embed=True)
    from_copy = backend.analyze(np.ascontiguousarray(view), landmarks=True, embed=True)
    assert len(from_view) == len(from_copy) >= 1
    assert np.allclose(from_view[0].embedding, from_copy[0].embedding)
    assert np.allclose(from_view[0].landmarks68, from_copy[0].landmarks68)
