"""CropOptions.validate at each boundary, its one-line messages, and what settings() keeps for a resume.

Every bound below is the documented one (docs/face.md "Options are checked before any work" and the comments in
crop/options.py): each is tested exactly at the limit (accepted) and just past it (a UsageError naming the flag).
"""

from __future__ import annotations

import pytest

from faceexpr_cli.crop.options import MODES, NOT_OUTPUT_SHAPING, OUT_OF_FRAME, X264_PRESETS, CropOptions
from faceexpr_cli.errors import UnknownNameError, UsageError


def _ok(**kw) -> CropOptions:
    return CropOptions(backend="dlib", **kw).validate()


def _bad(match: str, **kw) -> UsageError:
    with pytest.raises(UsageError, match=match) as exc:
        CropOptions(backend="dlib", **kw).validate()
    return exc.value


def test_defaults_are_the_documented_ones():
    o = CropOptions()
    # docs/face.md: union crop, 256 px, margin 0.3 per side, pad with blur, --preset superfast, detector at 480 px
    assert (o.size, o.mode, o.margin, o.out_of_frame, o.fill) == (256, "union", 0.3, "pad", "blur")
    assert (o.min_face, o.min_duration, o.max_duration, o.single_face) == (32.0, 1.0, None, False)
    assert (o.score_threshold, o.backend, o.backend_options) == (None, "default", {})
    assert (o.stride, o.detect_size, o.analysis_side, o.embed) == (10, 480, 480, True)
    assert (o.max_pixels, o.audio, o.fps, o.crf, o.preset) == (4096 * 4096, True, None, 18, "superfast")
    assert CropOptions().backend_options is not CropOptions().backend_options  # a fresh dict each
    assert MODES == ("union", "follow", "align") and OUT_OF_FRAME == ("pad", "drop")
    assert X264_PRESETS[0] == "ultrafast" and X264_PRESETS[-1] == "placebo" and len(X264_PRESETS) == 10


def test_validate_returns_the_options_and_resolves_the_backend():
    o = CropOptions(backend="dlib")
    assert o.validate() is o and o.backend == "dlib"
    from faceexpr_cli.face.backend import resolve_backend_name

    d = CropOptions().validate()
    assert d.backend == resolve_backend_name("default") and d.backend != "default"  # run.json records a real one


def test_unknown_names_name_the_choices():
    e = _bad("unknown crop mode 'zoom'", mode="zoom")
    assert e.hint == "use one of: union, follow, align"
    e = _bad("unknown out-of-frame rule 'crop'", out_of_frame="crop")
    assert e.hint == "use pad or drop"
    e = _bad("unknown --fill 'mirror'", fill="mirror")
    assert "black" in e.hint and "blur" in e.hint and e.hint.startswith("use one of: ")
    with pytest.raises(UnknownNameError, match="unknown x264 --preset 'fastest'") as exc:
        CropOptions(backend="dlib", preset="fastest").validate()
    assert "veryslow" in exc.value.one_line()
    for mode in MODES:
        assert _ok(mode=mode).mode == mode
    for rule in OUT_OF_FRAME:
        assert _ok(out_of_frame=rule).out_of_frame == rule
    for preset in X264_PRESETS:
        assert _ok(preset=preset).preset == preset


@pytest.mark.parametrize(("field", "good", "bad", "flag"), [
    ("size", (16, 4096), (15, 4097), "--size"),
    ("stride", (1, 1000), (0, 1001), "--stride"),
    ("detect_size", (64, 8192), (63, 8193), "--detect-size"),
    ("analysis_side", (64, 8192), (63, 8193), "analysis_side"),
    ("crf", (0, 51), (-1, 52), "crf"),
    ("max_pixels", (1, 10**9), (0, -5), "--max-pixels"),
])
def test_whole_number_bounds_are_inclusive(field, good, bad, flag):
    for v in good:
        assert getattr(_ok(**{field: v}), field) == v
    for v in bad:
        e = _bad(f"^{flag} must be a finite number", **{field: v})
        assert f"got {v!r}" in e.message


@pytest.mark.parametrize(("field", "flag"), [("size", "--size"), ("stride", "--stride"), ("crf", "crf"),
                                             ("detect_size", "--detect-size"), ("max_pixels", "--max-pixels"),
                                             ("analysis_side", "analysis_side")])
def test_whole_numbers_refuse_fractions_and_booleans(field, flag):
    e = _bad(f"^{flag} must be a whole number, got 64.5$", **{field: 64.5})
    assert e.message == f"{flag} must be a whole number, got 64.5"
    _bad(f"^{flag} must be a whole number, got True$", **{field: True})
    _bad(f"^{flag} must be a whole number, got '64'$", **{field: "64"})


def test_size_hint_and_detect_size_hint():
    assert _bad("--size", size=8).hint == "use 16..4096, e.g. 256 or 518"
    assert _bad("--detect-size", detect_size=8).hint == "e.g. 480; 0 detects on the full frame"
    assert _ok(detect_size=None).detect_size is None


def test_margin_is_zero_to_ten():
    assert _ok(margin=0).margin == 0 and _ok(margin=10).margin == 10
    e = _bad("^--margin must be a finite number >= 0 and <= 10", margin=-0.01)
    assert e.hint == "e.g. 0.3 (30% of the box on each side)"
    _bad("--margin", margin=10.01)
    _bad("--margin", margin=float("nan"))


def test_fps_is_above_zero_and_at_most_1000():
    assert _ok(fps=None).fps is None and _ok(fps=1000).fps == 1000 and _ok(fps=0.5).fps == 0.5
    e = _bad("^--fps must be a finite number > 0 and <= 1000", fps=0)
    assert e.hint == "use a rate such as 25 or 30, or leave it out"
    _bad("--fps", fps=1000.5)


def test_face_size_durations_and_score():
    assert _ok(min_face=0).min_face == 0 and _ok(min_duration=0).min_duration == 0
    assert _bad("^--min-face must be a finite number >= 0", min_face=-1).hint == \
        "a face size in source pixels, e.g. 32"
    assert _bad("^--min-duration must be a finite number >= 0", min_duration=-0.5).hint == "seconds, e.g. 1"
    assert _bad("--score-threshold", score_threshold=float("inf")).hint == \
        "a detector score, e.g. 0.5, or leave it out"
    assert _ok(score_threshold=-3.0).score_threshold == -3.0  # any finite score: no range
    assert _bad("^--max-duration must be a finite number > 0", max_duration=0).hint == \
        "seconds, e.g. 30, or leave it out"


def test_max_duration_is_at_least_min_duration_and_a_tenth_of_a_second():
    assert _ok(min_duration=2.0, max_duration=2.0).max_duration == 2.0  # equal is allowed
    e = _bad("^--max-duration must be at least --min-duration$", min_duration=2.0, max_duration=1.99)
    assert e.hint is None
    assert _ok(min_duration=0, max_duration=0.1).max_duration == 0.1  # the 0.1 s floor, inclusive
    _bad("at least --min-duration", min_duration=0, max_duration=0.09)
    assert _ok(min_duration=5.0, max_duration=None).max_duration is None


def test_backend_options_must_be_a_mapping():
    e = _bad("^backend options must be key=value pairs$", backend_options=["upsample=1"])
    assert e.hint is None
    assert _ok(backend_options={"upsample": 1}).backend_options == {"upsample": 1}


def test_settings_leave_out_only_what_does_not_shape_the_output():
    o = CropOptions(backend="dlib", size=128, max_pixels=123)
    d = o.to_dict()
    assert d["size"] == 128 and d["max_pixels"] == 123 and set(d) == set(o.__dataclass_fields__)
    s = o.settings()
    assert NOT_OUTPUT_SHAPING == ("max_pixels",)
    assert "max_pixels" not in s and set(s) == set(d) - {"max_pixels"}
    assert s == {k: v for k, v in d.items() if k != "max_pixels"}
    assert o.max_pixels == 123  # the options themselves are untouched
