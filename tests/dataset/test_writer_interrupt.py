"""Ctrl-C while a sample is being written into a shard: the shard that is kept holds only whole samples."""

from __future__ import annotations

import tarfile

import pytest

from faceexpr_cli.clip.synthetic import read_code
from faceexpr_cli.dataset import ClipDataset, DatasetWriter


def test_ctrl_c_inside_a_member_keeps_only_whole_samples(tmp_path, clip_bytes, monkeypatch):
    real = tarfile.copyfileobj
    calls = {"n": 0}

    def interrupted(src, dst, length=None, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # the third sample's mp4: half of it is written, then Ctrl-C
            dst.write(src.read(length // 2))
            raise KeyboardInterrupt
        return real(src, dst, length, *a, **k)

    monkeypatch.setattr(tarfile, "copyfileobj", interrupted)
    with pytest.raises(KeyboardInterrupt), DatasetWriter(tmp_path, max_count=100, settings={}) as w:
        for first, data in clip_bytes[:4]:
            w.add_sample(f"k{first}", data, {"first_frame": first}, {"source": "coded.mp4"})
    monkeypatch.setattr(tarfile, "copyfileobj", real)
    [shard] = tmp_path.glob("clips-*.tar")
    with tarfile.open(shard) as tar:  # a readable tar whose members are whole: each one decodes below
        assert tar.getnames() == ["k0.mp4", "k0.json", "k12.mp4", "k12.json"]
    samples = list(ClipDataset(tmp_path, audio=False, on_error="raise"))
    assert [read_code(s["frames"][0].numpy()) for s in samples] == [0, 12]
    assert all(len(s["frames"]) == 10 for s in samples)
    assert not list(tmp_path.glob(".*.part"))
    assert DatasetWriter(tmp_path, settings={}).done_keys == {"k0", "k12"}  # a resume redoes the third
