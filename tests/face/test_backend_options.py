"""Backend options (--face-opt) are checked once when the backend is built: a usage error, never a row per video."""

from __future__ import annotations

import pytest

from faceexpr_cli.errors import UsageError
from faceexpr_cli.face import get_backend


@pytest.mark.parametrize(("name", "opts", "words"), [
    ("dlib", {"upsample": -1}, "upsample"), ("dlib", {"upsample": "abc"}, "whole number"),
    ("dlib", {"upsample": 1.5}, "whole number"), ("dlib", {"jitters": 0}, "jitters"),
    ("dlib", {"score_threshold": float("nan")}, "score_threshold"), ("dlib", {"max_side": -5}, "max_side"),
    ("insightface", {"det_size": 100}, "multiple of 32"), ("insightface", {"det_thresh": 2}, "det_thresh"),
    ("opencv", {"min_size": 0}, "min_size"), ("opencv", {"min_neighbors": -1}, "min_neighbors"),
])
def test_bad_backend_options_are_usage_errors(name, opts, words):
    with pytest.raises(UsageError, match=words):
        get_backend(name, **opts)


def test_good_backend_options_are_kept():
    b = get_backend("dlib", upsample=1, jitters=2)
    assert (b.upsample, b.jitters) == (1, 2)
    assert get_backend("opencv", min_size=20).min_size == 20
