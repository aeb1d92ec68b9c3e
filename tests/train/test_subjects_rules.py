"""The data.subject_from rules on hand-made records: which field wins, the names they build, their messages."""

from __future__ import annotations

import hashlib

import pytest

from faceexpr_cli.errors import ConfigError
from faceexpr_cli.train import subjects as S


def sha8(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def test_present_refuses_none_empty_and_nan_only():
    assert not S._present(None) and not S._present("") and not S._present(float("nan"))
    assert S._present(0) and S._present("0") and S._present(" ") and S._present(False)


def test_subject_fields_read_a_dict_or_json_text():
    assert S._subject_fields({"subject": {"speaker": "x"}}) == {"speaker": "x"}
    assert S._subject_fields({"subject": '  {"speaker": "y"}'}) == {"speaker": "y"}
    assert S._subject_fields({"subject": "{not json"}) == {}
    assert S._subject_fields({"subject": "alice"}) == {}
    assert S._subject_fields({}) == {}


def test_subject_from_meta_prefers_subject_id_then_subject():
    assert S.subject_from_meta({"subject_id": "a", "subject": "b"}) == "a"
    assert S.subject_from_meta({"subject_id": "", "subject": "b"}) == "b"
    assert S.subject_from_meta({"subject": 7}) == "7"
    assert S.subject_from_meta({"subject": {"id": "i1"}}) == "i1"
    assert S.subject_from_meta({"subject": {"subject_id": "s1", "id": "i1"}}) == "s1"
    assert S.subject_from_meta({"subject": ' {"id": 3}'}) == "3"
    assert S.subject_from_meta({"subject": "{broken"}) == "{broken"  # not JSON: the text itself
    assert S.subject_from_meta({"subject": {"age": 4}}) is None
    assert S.subject_from_meta({"other": "x"}) is None


def test_source_subject_is_stem_and_eight_hex_digits():
    assert S.source_subject({"source": "/v/talk.mp4"}) == f"talk-{sha8('/v/talk.mp4')}"
    assert S.source_subject({"source": "/v/talk.mp4", "source_id": "0123456789abcdef"}) == "talk-01234567"
    assert S.source_subject({"source": "/v/talk.mp4", "source_id": ""}) == f"talk-{sha8('/v/talk.mp4')}"
    assert S.source_subject({"source": ""}) is None
    assert S.source_subject({}) is None


def test_track_subject_pads_the_track_to_three_digits():
    rec = {"source": "a/b.mp4", "source_id": "abcdef012345"}
    assert S.track_subject({**rec, "track_id": 4}) == "b-abcdef01/t004"
    assert S.track_subject({**rec, "track": "12"}) == "b-abcdef01/t012"
    assert S.track_subject({**rec, "track_id": 3, "track": 9}) == "b-abcdef01/t003"
    assert S.track_subject({**rec, "track_id": {"id": 1}}) is None
    assert S.track_subject({**rec, "track_id": None}) is None
    assert S.track_subject(rec) is None
    assert S.track_subject({"track_id": 1}) is None


def test_auto_subject_falls_back_to_the_source_when_the_name_is_the_source():
    rec = {"source": "x/y.mp4", "source_id": "99999999aaaa"}
    assert S.auto_subject({**rec, "subject": "ann"}) == "ann"
    assert S.auto_subject({**rec, "subject": "x/y.mp4"}) == "y-99999999"
    assert S.auto_subject(rec) == "y-99999999"
    assert S.auto_subject({}) is None


def test_column_rule_reads_the_record_then_its_subject_fields():
    rule = S.column_subject("speaker")
    assert rule({"speaker": 5}) == "5"
    assert rule({"speaker": "top", "subject": {"speaker": "inner"}}) == "top"
    assert rule({"subject": {"speaker": "inner"}}) == "inner"
    assert rule({"speaker": ""}) is None and rule({}) is None
    assert S.record_fields({"a": 1, "subject": '{"b": 2}'}) == {"a", "subject", "b"}


def test_subject_rule_names_and_unknown_columns():
    assert S.subject_rule("auto", [], "w") is S.auto_subject
    assert S.subject_rule("source", [], "w") is S.source_subject
    assert S.subject_rule("track", [], "w") is S.track_subject
    assert S.subject_rule("speaker", ["speaker"], "w")({"speaker": "s"}) == "s"
    with pytest.raises(ConfigError) as info:
        S.subject_rule("speaker", ["b", "a", "b"], "the index")
    err = info.value
    assert err.message == "data.subject_from=speaker: the index has no such column (columns: a, b)"
    assert err.hint == "use auto, source, track or one of those columns"


def test_subject_rule_lists_at_most_forty_columns():
    cols = [f"c{i:02d}" for i in range(41)]
    with pytest.raises(ConfigError) as info:
        S.subject_rule("x", cols, "w")
    assert info.value.message.endswith("(columns: " + ", ".join(cols[:40]) + " ...)")
    with pytest.raises(ConfigError) as info:
        S.subject_rule("x", cols[:40], "w")
    assert info.value.message.endswith("(columns: " + ", ".join(cols[:40]) + ")")


def test_nothing_found_names_the_column_the_rule_reads():
    err = S.nothing_found("track", "the folder")
    assert isinstance(err, ConfigError)
    assert err.message == "data.subject_from=track: no usable clip in the folder records 'track_id'"
    assert err.hint == "use another data.subject_from (auto, source, track or a column)"
    assert "records 'source'" in S.nothing_found("source", "w").message
    assert "records 'speaker'" in S.nothing_found("speaker", "w").message


def test_warnings_for_unnamed_clips_and_a_single_subject(fx_log):
    fx_log()
    S.warn_unnamed(0, "track", "a.mp4")
    assert fx_log() == ""
    S.warn_unnamed(3, "track", "a.mp4")
    assert fx_log() == ("3 clip(s) skipped: data.subject_from=track finds no subject in their record (e.g. a.mp4)")
    S.check_subjects(["a", "b"])
    S.check_subjects([])
    assert fx_log() == ""
    S.check_subjects(["solo"])
    text = fx_log()
    assert text.startswith("the dataset has one subject ('solo', data.subject_from=auto)")
    S.check_subjects(["solo"], "speaker")
    assert "data.subject_from=speaker" in fx_log()
