"""Where clip samples come from (``dataset.sources``): which files a dataset path names, and the samples a tar
shard or a lone mp4 holds, against hand-built folders and tars (mutation survivors of list_shards/iter_shard)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from faceexpr_cli.dataset.format import safe_key
from faceexpr_cli.dataset.sources import iter_shard, list_shards
from faceexpr_cli.errors import DataError, MissingFileError


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tar(path: Path, members: list[tuple[str, bytes | None]]) -> Path:
    """``None`` data makes a directory entry."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_a_folder_of_fx_clip_shards_lists_only_the_numbered_ones_in_order(tmp_path):
    b = _touch(tmp_path / "clips-000001.tar")
    a = _touch(tmp_path / "clips-000000.tar")
    _touch(tmp_path / "clips-1.tar")  # not six digits
    _touch(tmp_path / "other.tar")
    _touch(tmp_path / "v.mp4")
    assert list_shards(tmp_path) == [a, b]


def test_other_tars_are_listed_when_no_numbered_shard_exists(tmp_path):
    z, y = _touch(tmp_path / "z.tar"), _touch(tmp_path / "y.tar")
    _touch(tmp_path / "v.mp4")
    assert list_shards(str(tmp_path)) == [y, z]


def test_a_plain_folder_lists_every_video_below_it_sorted_hidden_and_others_left_out(tmp_path):
    want = [_touch(tmp_path / "a" / "B.MP4"), _touch(tmp_path / "a" / "c.webm"), _touch(tmp_path / "d.mov"),
            _touch(tmp_path / "e.mkv"), _touch(tmp_path / "f.m4v")]
    _touch(tmp_path / ".hidden.mp4")
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "f.json")
    assert list_shards(tmp_path) == sorted(want)


def test_files_globs_and_lists(tmp_path):
    one = _touch(tmp_path / "x" / "one.mp4")
    two = _touch(tmp_path / "x" / "two.mp4")
    shard = _touch(tmp_path / "s.tar")
    assert list_shards(one) == [one]
    assert list_shards(str(tmp_path / "x" / "*.mp4")) == [one, two]
    assert list_shards(str(tmp_path / "x" / "t?o.mp4")) == [two]
    assert list_shards(str(tmp_path / "x" / "[o]ne.mp4")) == [one]
    assert list_shards([shard, str(tmp_path / "x")]) == [shard, one, two]
    assert list_shards((two, one)) == [two, one]


def test_what_lists_nothing_is_one_error(tmp_path):
    with pytest.raises(MissingFileError, match=r"dataset shards not found: .*\*\.tar") as err:
        list_shards(str(tmp_path / "*.tar"))
    assert err.value.hint == "the pattern matches no files"
    with pytest.raises(MissingFileError, match="dataset not found"):
        list_shards(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    _touch(tmp_path / "empty" / "readme.txt")
    with pytest.raises(DataError, match="no clip shards"):
        list_shards(tmp_path / "empty")


def test_a_lone_video_is_a_shard_of_one_sample_with_its_json(tmp_path):
    video = _touch(tmp_path / "my clip!.mp4", b"VIDEO")
    sample, = list(iter_shard(video))
    assert (sample.key, sample.video, sample.url) == (safe_key("my clip!"), b"VIDEO", str(video))
    assert sample.meta == {"key": "my_clip", "source": str(video)}
    (tmp_path / "my clip!.json").write_text(json.dumps({"key": "a/b c", "label": 3, "source": "elsewhere.mp4"}))
    sample, = list(iter_shard(video))
    assert sample.key == "a_b_c" and sample.meta == {"key": "a_b_c", "label": 3, "source": "elsewhere.mp4"}


def test_a_tar_shard_yields_its_samples_in_order_with_their_parts(tmp_path):
    shard = _tar(tmp_path / "clips-000000.tar", [
        ("dir", None),
        ("a.mp4", b"A"), ("a.json", json.dumps({"label": 1}).encode()),
        ("README", b"no dot: not a part"),
        ("b.MP4", b"B"),  # no json: empty metadata; the extension's case does not matter
        ("c.json", b"{}"),  # no video: not a sample
        ("sub/d.mp4", b"D"),  # the key is the base name, without its folder
        ("f.x.mp4", b"F"),  # the part is all after the first dot ("x.mp4"): not a video
        ("e.webm", b"E"), ("e.meta.json", b"not read"),
    ])
    samples = list(iter_shard(shard))
    assert [(s.key, s.video, s.meta) for s in samples] == [
        ("a", b"A", {"label": 1, "key": "a"}), ("b", b"B", {"key": "b"}), ("d", b"D", {"key": "d"}),
        ("e", b"E", {"key": "e"})]
    assert {s.url for s in samples} == {str(shard)}


def test_a_tar_whose_key_is_unsafe_is_made_safe_and_its_last_sample_is_kept(tmp_path):
    shard = _tar(tmp_path / "s.tar", [("x y.mp4", b"1"), ("x y.json", json.dumps({"key": "other"}).encode())])
    sample, = list(iter_shard(shard))
    assert sample.key == "x_y" and sample.meta == {"key": "x_y"}


def test_broken_shards_and_metadata_are_one_error_naming_them(tmp_path):
    bad = _touch(tmp_path / "bad.tar", b"not a tar at all" * 10)
    with pytest.raises(DataError, match="not a readable tar shard"):
        list(iter_shard(bad))
    shard = _tar(tmp_path / "j.tar", [("k.mp4", b"1"), ("k.json", b"{broken")])
    with pytest.raises(DataError, match=r"j\.tar: k\.json: not valid JSON"):
        list(iter_shard(shard))
    video = _touch(tmp_path / "v.mp4")
    (tmp_path / "v.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"v\.json: not a JSON object"):
        list(iter_shard(video))
