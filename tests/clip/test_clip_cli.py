"""The done-when test: `fx clip --keywords` cuts clips that start on the keyword's frame, with audio in sync,
and the dataset reader streams them back."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.clip.synthetic import beep_onsets, read_code
from faceexpr_cli.dataset import ClipDataset


def _run(capsys, *args):
    code = main(["clip", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keyword_clips_start_on_the_keyword_frame_with_audio_in_sync(talk, tmp_path, capsys):
    out = tmp_path / "clips"
    code, stdout, _ = _run(capsys, talk.path, "--keywords", 'smile,"look surprised"', "--post", "0.8", "--out", out)
    assert code == 0, stdout
    assert "3 clips" in stdout and "smile 2" in stdout and "look surprised 1" in stdout
    samples = sorted(ClipDataset(out), key=lambda s: s["meta"]["anchor"])
    assert [s["meta"]["keyword"] for s in samples] == ["smile", "look surprised", "smile"]
    for s, word_start in zip(samples, [1.13, 2.87, 5.37], strict=True):
        first = read_code(s["frames"][0].numpy())
        assert abs(first - word_start * 25) <= 1.0, (first, word_start)
        codes = [read_code(f.numpy()) for f in s["frames"]]
        assert codes == list(range(first, first + len(codes)))  # consecutive frames, nothing dropped
        assert len(codes) == min(20, 150 - first)  # 0.8 s at 25 fps, never past the video (150 frames)
        # audio: the beeps at whole seconds of the source sit at the same place in the clip
        beeps = [b for b in range(7) if first / 25 <= b < (first + len(codes)) / 25]
        onsets = beep_onsets(s["audio"][0].numpy(), s["sample_rate"])
        assert len(onsets) == len(beeps)
        for b, o in zip(beeps, onsets, strict=True):
            assert abs(o - (b - first / 25)) < 0.03
        assert s["meta"]["matched_text"] in ("smile", "look surprised")
        assert s["meta"]["source"] == str(talk.path)
        assert s["meta"]["transcript"].endswith("talk.en.vtt")


def test_stats_index_and_json_output(talk, tmp_path, capsys):
    out = tmp_path / "clips"
    code, stdout, _ = _run(capsys, talk.path, "-k", "smile,frown", "--out", out, "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["hits_per_keyword"] == {"smile": 2, "frown": 0}
    assert result["keywords_not_found"] == ["frown"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["clips"] == 2 and stats["inputs"] == {"total": 1, "done": 1, "failed": 0, "skipped_as_done": 0}
    rows = pq.read_table(out / "index.parquet").to_pylist()
    assert {r["status"] for r in rows} == {"ok"} and all(r["shard"] == "clips-000000.tar" for r in rows)


def test_stemming_only_when_asked(talk, tmp_path, capsys):
    _, plain, _ = _run(capsys, talk.path, "-k", "smile", "--out", tmp_path / "a", "--post", "0.2")
    _, stemmed, _ = _run(capsys, talk.path, "-k", "smile", "--stem", "--out", tmp_path / "b", "--post", "0.2")
    assert "smile 2" in plain and "smile 3" in stemmed


def test_keyword_not_found_is_a_summary_and_exit_0(talk, tmp_path, capsys):
    code, stdout, _ = _run(capsys, talk.path, "-k", "frown", "--out", tmp_path / "none")
    assert code == 0 and "no keyword found in 1 videos (frown)" in stdout


def test_empty_keyword_list_is_a_usage_error(talk, tmp_path, capsys):
    code, _, err = _run(capsys, talk.path, "-k", " , ", "--out", tmp_path / "x")
    assert code == 2 and "keyword list is empty" in err
    assert not (tmp_path / "x").exists()


def test_fast_cut_reports_the_snap_and_keeps_audio(talk, tmp_path, capsys):
    out = tmp_path / "fast"
    code, stdout, _ = _run(capsys, talk.path, "-k", "surprised", "--cut", "fast", "--out", out, "--json")
    assert code == 0
    [s] = list(ClipDataset(out))
    # the clip starts on the source's last key frame at or before the window (3.16 s), read here with PyAV
    import av

    with av.open(str(talk.path)) as box:
        vs = box.streams.video[0]
        keys = sorted(float(p.pts * vs.time_base) for p in box.demux(vs) if p.is_keyframe and p.pts is not None)
    key = max(k for k in keys if k <= 3.16 + 1e-6)
    assert s["meta"]["actual_start"] == pytest.approx(key, abs=1e-3)
    assert s["meta"]["snap"] == pytest.approx(key - 3.16, abs=0.02)
    codes = [read_code(f.numpy()) for f in s["frames"]]
    first = round(key * 25)
    assert codes == list(range(first, first + len(codes))) and codes[-1] >= round(4.15 * 25) - 1  # through the window
    # the stream-copied audio is the source's: its beeps (at whole seconds) sit at the same clip times
    onsets = beep_onsets(s["audio"][0].numpy(), s["sample_rate"])
    later = [o for o in onsets if o > 0.2]
    want = [w - key for w in range(1, 20) if w - key > 0.2][: len(later)]
    assert s["has_audio"] and later == pytest.approx(want, abs=0.03) and len(later) >= 2


def test_seed_rules_next_segment_with_offset_and_30_frames(talk, tmp_path, capsys):
    # the seed keeps clips 2 s from the end: in this 6 s video both +1 s and -1 s windows are too late
    code, stdout, _ = _run(capsys, talk.path, "-k", "surprised", "--rules", "seed", "--out", tmp_path / "s1")
    assert code == 0 and "dropped 1 (window_past_end 1)" in stdout
    out = tmp_path / "seed"
    code, stdout, _ = _run(capsys, talk.path, "-k", "surprised", "--rules", "seed", "--end-margin", "0", "--out", out)
    assert code == 0, stdout
    [s] = list(ClipDataset(out))
    # "look surprised" is in the line "look surprised great you" (2.87 s); the next line starts at 4.45 s
    assert s["meta"]["anchor"] == pytest.approx(4.45)
    first = read_code(s["frames"][0].numpy())
    # +1 s would end past 6 - 2 s, so the offset is applied backwards: 3.45 s
    assert first == round(3.45 * 25) and len(s["frames"]) == 30
    assert s["meta"]["hits"][0]["fallback"] is True
