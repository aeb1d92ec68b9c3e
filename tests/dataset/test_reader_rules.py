"""ClipDataset's exact rules: work split, random starts, sample fields, errors, collation and counting."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from faceexpr_cli.clip.synthetic import read_code
from faceexpr_cli.dataset import ClipDataset, DatasetWriter, collate_clips
from faceexpr_cli.dataset.reader import count_samples, fit_squash
from faceexpr_cli.errors import FxError


def _dataset(root, clips, max_count=1, broken=()):
    """One sample per shard by default: key k<first frame>, meta with the clip's own fps and frame count."""
    with DatasetWriter(root, max_count=max_count) as w:
        for first, data in clips:
            w.add_sample(f"k{first}", data, {"fps": 25.0, "frames": 10, "first": first}, {"source": "c"})
        for key in broken:
            w.add_sample(key, b"not a video at all", {"fps": 25.0, "frames": 10}, {"source": "c"})
    return root


class _Rng(random.Random):
    """Records the bounds randint is asked for and returns the upper one."""

    def __init__(self):
        super().__init__(0)
        self.asked = []

    def randint(self, a, b):
        self.asked.append((a, b))
        return b


@pytest.mark.parametrize(("fps", "num_frames", "meta", "start", "asked"), [
    (None, 4, {"fps": 25.0, "frames": 10}, 6 / 25, [(0, 6)]),  # 10 frames, 4 wanted: starts 0..6 frames in
    (12.5, 4, {"fps": 25.0, "frames": 10}, 1 / 12.5, [(0, 1)]),  # 0.4 s at 12.5 fps = 5 frames: 0..1
    (None, 9, {"fps": 25.0, "frames": 10}, 1 / 25, [(0, 1)]),
    (None, 10, {"fps": 25.0, "frames": 10}, 0.0, []),  # nothing to spare
    (None, 12, {"fps": 25.0, "frames": 10}, 0.0, []),
    (None, 4, {"fps": 25.0}, 0.0, []),  # frame count unknown: from the start
    (None, 4, {"frames": 10}, 6 / 25, [(0, 6)]),  # rate unknown: 25 fps
    (10.0, 4, {"frames": 10}, 6 / 10, [(0, 6)]),  # no fps in the meta: its frames count at the requested rate
])
def test_random_start_draws_from_the_frames_to_spare(tmp_path, clip_bytes, fps, num_frames, meta, start, asked):
    ds = ClipDataset(_dataset(tmp_path, clip_bytes[:1]), fps=fps, num_frames=num_frames, temporal="random")
    rng = _Rng()
    assert ds._random_start(meta, rng) == pytest.approx(start)
    assert rng.asked == asked


def test_a_random_start_is_where_the_decoded_frames_begin(tmp_path, clip_bytes):
    first = clip_bytes[2][0]
    ds = ClipDataset(_dataset(tmp_path, clip_bytes[2:3]), num_frames=4, temporal="random", audio=False,
                     size=(24, 12), seed=5)
    codes = [read_code(f.numpy()) for f in next(iter(ds))["frames"]]
    assert codes[0] - first in range(0, 7) and codes == list(range(codes[0], codes[0] + 4))
    starts = set()
    for seed in range(12):
        ds = ClipDataset(tmp_path, num_frames=4, temporal="random", audio=False, size=(24, 12), seed=seed)
        starts.add(read_code(next(iter(ds))["frames"][0].numpy()) - first)
    assert len(starts) > 2 and starts <= set(range(7))  # random, and only where 4 frames still fit


def test_options_are_normalised_and_bad_ones_refused(tmp_path, clip_bytes):
    root = _dataset(tmp_path, clip_bytes[:1])
    assert ClipDataset(root, size=32).size == (32, 32)
    assert ClipDataset(root, size=[40, 20]).size == (40, 20)
    assert ClipDataset(root).size is None
    assert ClipDataset(root, shuffle=True).buffer == 256
    assert ClipDataset(root, shuffle=5).buffer == 5
    assert ClipDataset(root, shuffle=False).buffer == 0
    assert ClipDataset(root, resize="squash")._fit is fit_squash
    with pytest.raises(ValueError, match="temporal must be 'start' or 'random'"):
        ClipDataset(root, temporal="middle")


def test_shards_go_whole_to_consumers_when_there_are_enough(tmp_path, clip_bytes):
    ds = ClipDataset(_dataset(tmp_path, clip_bytes[:5]), rank=1, world_size=2)
    shards, stride, offset = ds._my_shards()
    assert [p.name for p in shards] == ["clips-000001.tar", "clips-000003.tar"] and (stride, offset) == (1, 0)
    ds2 = ClipDataset(tmp_path, rank=1, world_size=5)  # five shards, five consumers: one each
    assert [p.name for p in ds2._my_shards()[0]] == ["clips-000001.tar"]


def test_fewer_shards_than_consumers_every_consumer_keeps_every_nth_sample(tmp_path, clip_bytes):
    root = _dataset(tmp_path, clip_bytes, max_count=6)  # one shard of six samples
    keys = {}
    for rank in range(3):
        ds = ClipDataset(root, rank=rank, world_size=3)
        assert ds._my_shards()[1:] == (3, rank)
        keys[rank] = [r.key for r in ds._raw()]
    assert keys == {0: ["k0", "k36"], 1: ["k12", "k48"], 2: ["k24", "k60"]}


def test_rank_and_world_come_from_the_environment(tmp_path, clip_bytes, monkeypatch):
    root = _dataset(tmp_path, clip_bytes[:4])
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert ClipDataset(root)._consumer() == (1, 2)
    assert ClipDataset(root, rank=0, world_size=4)._consumer() == (0, 4)  # arguments win
    assert [s.key for s in ClipDataset(root)._raw()] == ["k12", "k36"]


def test_filter_sees_the_meta_and_is_applied_before_the_split(tmp_path, clip_bytes):
    root = _dataset(tmp_path, clip_bytes, max_count=6)
    keep = ClipDataset(root, filter=lambda m: m["first"] >= 24, rank=0, world_size=2)
    assert [r.key for r in keep._raw()] == ["k24", "k48"]  # of k24, k36, k48, k60: every second one


def test_sample_fields_against_the_clip(tmp_path, clip_bytes):
    s = next(iter(ClipDataset(_dataset(tmp_path, clip_bytes[1:2]), size=(24, 12), sample_rate=8000)))
    assert s["key"] == "k12" and s["url"].endswith("clips-000000.tar") and s["meta"]["first"] == 12
    assert s["fps"] == 25.0 and s["length"] == 10 and s["sample_rate"] == 8000
    assert torch.allclose(s["times"], torch.arange(10, dtype=torch.float32) / 25)
    assert s["times"].dtype == torch.float32 and s["audio"].dtype == torch.float32
    assert s["audio"].shape == (1, round(10 / 25 * 8000)) and s["has_audio"] is True
    assert s["frames"].shape == (10, 12, 24, 3)
    stereo = next(iter(ClipDataset(tmp_path, size=(24, 12), channels=2, audio=True)))
    assert stereo["audio"].shape == (2, 6400)
    assert torch.allclose(stereo["audio"][0], stereo["audio"][1], atol=1e-4)  # a mono source on both channels


def test_padding_repeats_the_last_frame_and_pads_audio_with_silence(tmp_path, clip_bytes):
    s = next(iter(ClipDataset(_dataset(tmp_path, clip_bytes[:1]), num_frames=13, size=(24, 12))))
    codes = [read_code(f.numpy()) for f in s["frames"]]
    assert codes == list(range(10)) + [9, 9, 9] and s["length"] == 10
    assert torch.equal(s["frames"][12], s["frames"][9])
    assert s["audio"].shape == (1, round(13 / 25 * 16000))
    assert s["audio"][0, 6400:].abs().max() == 0 and s["audio"][0, :6400].abs().max() > 0.01


def test_a_clip_that_does_not_decode_is_skipped_or_raised(tmp_path, clip_bytes, caplog):
    root = _dataset(tmp_path, clip_bytes[:2], broken=["bad"])
    keys = [s["key"] for s in ClipDataset(root, audio=False, size=(24, 12))]
    assert keys == ["k0", "k12"]
    assert any("skipping bad from" in r.getMessage() for r in caplog.records)
    with pytest.raises(FxError):
        list(ClipDataset(root, audio=False, size=(24, 12), on_error="raise"))


def test_buffered_shuffle_yields_every_sample_once_in_another_order(tmp_path, clip_bytes):
    root = _dataset(tmp_path, clip_bytes, max_count=6)  # one shard: only the buffer can reorder
    keys = [s["key"] for s in ClipDataset(root, shuffle=2, seed=0, audio=False, size=(24, 12))]
    assert sorted(keys) == sorted(f"k{f}" for f, _ in clip_bytes) and len(keys) == 6
    orders = {tuple(s["key"] for s in ClipDataset(root, shuffle=3, seed=seed, audio=False, size=(24, 12)))
              for seed in range(6)}
    assert len(orders) > 2


def test_collate_pads_with_zeros_and_keeps_the_rest_as_lists():
    def sample(t, n, key):
        return {"key": key, "frames": torch.full((t, 2, 2, 3), 7, dtype=torch.uint8),
                "times": torch.arange(t, dtype=torch.float32), "audio": torch.ones(1, n), "length": t,
                "has_audio": key == "a", "fps": 25.0, "sample_rate": 8000, "meta": {"k": key}, "url": key + ".tar"}

    b = collate_clips([sample(3, 5, "a"), sample(5, 9, "b")])
    assert b["frames"].shape == (2, 5, 2, 2, 3) and b["audio"].shape == (2, 1, 9) and b["times"].shape == (2, 5)
    assert b["frames"][0, 3:].sum() == 0 and (b["frames"][0, :3] == 7).all() and (b["frames"][1] == 7).all()
    assert b["audio"][0, 0, 5:].sum() == 0 and b["audio"][0, 0, :5].sum() == 5 and b["audio"][1].sum() == 9
    assert b["times"][0].tolist() == [0, 1, 2, 0, 0]
    assert b["length"].tolist() == [3, 5] and b["has_audio"].tolist() == [True, False]
    assert b["key"] == ["a", "b"] and b["fps"] == [25.0, 25.0] and b["sample_rate"] == 8000
    assert b["meta"] == [{"k": "a"}, {"k": "b"}] and b["url"] == ["a.tar", "b.tar"]


def test_count_samples_counts_ok_rows_of_the_index(tmp_path, clip_bytes):
    assert count_samples(tmp_path) is None
    with DatasetWriter(tmp_path) as w:
        for first, data in clip_bytes[:3]:
            w.add_sample(f"k{first}", data, {}, {})
        w.add_row({"status": "failed", "source": "x", "error": "x: broken"})
        w.add_row({"status": "dropped", "source": "x", "key": "d", "reason": "short"})
    assert count_samples(tmp_path) == 3


def test_squash_and_crop_agree_on_a_square_clip():
    frames = np.random.default_rng(0).integers(0, 255, (2, 40, 40, 3), dtype=np.uint8)
    from faceexpr_cli.dataset.reader import fit_crop

    assert np.array_equal(fit_crop(frames, (20, 20)), fit_squash(frames, (20, 20)))
    assert fit_squash(frames, (40, 40)) is frames  # already that size: untouched


def test_random_start_counts_the_clips_frames_at_the_clips_own_rate(tmp_path, clip_bytes):
    # a 10 fps clip of 10 frames read at its own rate: 1 s, 6 frames to spare for 4
    ds = ClipDataset(_dataset(tmp_path, clip_bytes[:1]), num_frames=4, temporal="random")
    rng = _Rng()
    assert ds._random_start({"fps": 10.0, "frames": 10}, rng) == pytest.approx(6 / 10) and rng.asked == [(0, 6)]


def test_workers_of_a_rank_are_numbered_after_the_ranks_before(tmp_path, clip_bytes, monkeypatch):
    from types import SimpleNamespace

    from faceexpr_cli.dataset import reader

    ds = ClipDataset(_dataset(tmp_path, clip_bytes[:1]), rank=2, world_size=3)
    monkeypatch.setattr(reader, "get_worker_info", lambda: SimpleNamespace(id=1, num_workers=4))
    assert ds._consumer() == (2 * 4 + 1, 12)


def test_downscaling_averages_pixels_and_upscaling_interpolates():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (1, 40, 40, 3), dtype=np.uint8)
    import cv2

    small = fit_squash(frames, (20, 20))[0]
    assert np.array_equal(small, cv2.resize(frames[0], (20, 20), interpolation=cv2.INTER_AREA))
    big = fit_squash(frames, (60, 60))[0]
    assert np.array_equal(big, cv2.resize(frames[0], (60, 60), interpolation=cv2.INTER_LINEAR))


def test_a_batch_of_one_collates():
    one = {"key": "a", "frames": torch.zeros(2, 2, 2, 3, dtype=torch.uint8), "times": torch.zeros(2),
           "audio": torch.zeros(1, 4), "length": 2, "has_audio": False, "fps": 25.0, "sample_rate": 16000,
           "meta": {}, "url": "a.tar"}
    b = collate_clips([one])
    assert b["frames"].shape == (1, 2, 2, 2, 3) and b["sample_rate"] == 16000 and b["key"] == ["a"]
