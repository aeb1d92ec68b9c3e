"""Writing shards + index, resuming, and streaming samples back through ClipDataset and a DataLoader."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest

from faceexpr_cli.clip.synthetic import beep_onsets, read_code
from faceexpr_cli.dataset import ClipDataset, DatasetWriter, collate_clips


def _write(root, clips, max_count=2, **kw):
    with DatasetWriter(root, max_count=max_count, settings={"mode": "test"}, **kw) as w:
        for first, data in clips:
            w.add_sample(f"src-{first:04d}", data, {"source": "coded.mp4", "first_frame": first, "fps": 25.0,
                                                     "frames": 10}, {"source": "coded.mp4", "start": first / 25})
        w.add_row({"status": "failed", "source": "broken.mp4", "error": "broken.mp4: not a video"})
        w.input_done("coded.mp4")
    return w


def test_shards_index_and_reader_roundtrip(tmp_path, clip_bytes):
    _write(tmp_path, clip_bytes)
    tars = sorted(tmp_path.glob("clips-*.tar"))
    assert [t.name for t in tars] == ["clips-000000.tar", "clips-000001.tar", "clips-000002.tar"]
    with tarfile.open(tars[0]) as tar:
        assert tar.getnames() == ["src-0000.mp4", "src-0000.json", "src-0012.mp4", "src-0012.json"]
    index = pq.read_table(tmp_path / "index.parquet").to_pylist()
    assert [r["status"] for r in index].count("ok") == 6
    assert [r for r in index if r["status"] == "failed"][0]["error"].startswith("broken.mp4")
    assert not list(tmp_path.glob(".*.part"))

    samples = list(ClipDataset(tmp_path, size=(96, 48)))
    assert [s["key"] for s in samples] == [f"src-{f:04d}" for f, _ in clip_bytes]
    for s in samples:
        assert s["frames"].shape == (10, 48, 96, 3) and str(s["frames"].dtype) == "torch.uint8"
        first = s["meta"]["first_frame"]
        assert [read_code(f.numpy()) for f in s["frames"]] == list(range(first, first + 10))
        assert s["audio"].shape == (1, 6400) and s["has_audio"]


def test_fps_num_frames_padding_and_channels_first(tmp_path, clip_bytes):
    _write(tmp_path, clip_bytes[:1])
    s = next(iter(ClipDataset(tmp_path, fps=12.5, num_frames=8, channels_first=True, sample_rate=8000)))
    # 10 frames at 25 fps = 0.4 s -> 5 frames at 12.5 fps, padded to 8 by repeating the last one
    assert s["frames"].shape == (8, 3, 96, 192) and s["length"] == 5
    codes = [read_code(f.permute(1, 2, 0).numpy()) for f in s["frames"]]
    assert codes == [0, 2, 4, 6, 8, 8, 8, 8]
    assert s["audio"].shape == (1, round(8 / 12.5 * 8000))


def test_split_over_workers_and_ranks_covers_each_sample_once(tmp_path, clip_bytes):
    import torch

    _write(tmp_path, clip_bytes)  # 3 shards of 2
    seen = []
    for rank in range(2):
        ds = ClipDataset(tmp_path, rank=rank, world_size=2, shuffle=4, seed=3, audio=False)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_clips)
        for batch in loader:
            assert batch["frames"].shape[1:] == (10, 96, 192, 3)
            seen.extend(batch["key"])
    assert sorted(seen) == sorted(f"src-{f:04d}" for f, _ in clip_bytes)


def test_shuffle_changes_with_epoch_and_is_seeded(tmp_path, clip_bytes):
    _write(tmp_path, clip_bytes, max_count=1)  # 6 shards of one sample

    def order(seed=1, epoch=0, shuffle=3):
        ds = ClipDataset(tmp_path, shuffle=shuffle, seed=seed, audio=False, size=(24, 12))
        ds.set_epoch(epoch)
        return [(s["key"], read_code(s["frames"][0].numpy())) for s in ds]

    stored = order(shuffle=False)
    assert [k for k, _ in stored] == [f"src-{f:04d}" for f, _ in clip_bytes]
    assert [c for _, c in stored] == [f for f, _ in clip_bytes]  # each key comes with its own frames
    a = order()
    assert sorted(a) == sorted(stored) and a != stored  # a permutation, and not the stored order
    assert order() == a  # the same seed and epoch: the same order, also in a new dataset object
    b = order(epoch=1)
    assert sorted(b) == sorted(stored) and b != a and b != stored  # another epoch, another order
    assert order(epoch=1) == b
    c = order(seed=2)
    assert sorted(c) == sorted(stored) and c != a and c != stored  # another seed, another order


def test_resume_skips_finished_keys_and_inputs(tmp_path, clip_bytes):
    _write(tmp_path, clip_bytes[:3])
    w = DatasetWriter(tmp_path, max_count=2, settings={"mode": "test"})
    assert w.resumed and "coded.mp4" in w.done_inputs
    assert w.done_keys == {"src-0000", "src-0012", "src-0024"}
    w.close()
    with pytest.raises(Exception, match="other settings"):
        DatasetWriter(tmp_path, settings={"mode": "other"})


def test_interrupted_shard_is_dropped(tmp_path, clip_bytes):
    try:
        with DatasetWriter(tmp_path, max_count=2, settings={}) as w:
            for first, data in clip_bytes[:3]:
                w.add_sample(f"k{first}", data, {}, {})
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert [p.name for p in tmp_path.glob("clips-*.tar")] == ["clips-000000.tar"]
    assert not list(tmp_path.glob(".*.part"))
    assert DatasetWriter(tmp_path, settings={}).done_keys == {"k0", "k12"}


def test_plain_folder_of_mp4s(tmp_path, clip_bytes):
    for first, data in clip_bytes[1:3]:  # frames 12-21 (0.48-0.88 s) and 24-33 (0.96-1.36 s)
        (tmp_path / f"clip{first}.mp4").write_bytes(data)
    (tmp_path / "clip12.json").write_text(json.dumps({"keyword": "smile"}))
    samples = sorted(ClipDataset(tmp_path), key=lambda s: s["key"])
    assert [s["key"] for s in samples] == ["clip12", "clip24"]
    assert samples[0]["meta"]["keyword"] == "smile" and "keyword" not in samples[1]["meta"]
    for s, first in zip(samples, (12, 24), strict=True):  # each file's own frames, all of them
        assert [read_code(f.numpy()) for f in s["frames"]] == list(range(first, first + 10))
        assert s["has_audio"] and s["audio"].shape == (1, 6400)
    # the source beeps at every whole second: none in 0.48-0.88 s, the one at 1.0 s lies 0.04 s into clip24
    assert len(beep_onsets(samples[0]["audio"][0].numpy(), 16000)) == 0
    assert samples[0]["audio"].abs().max() > 0.01  # the quiet tone between beeps is there
    assert beep_onsets(samples[1]["audio"][0].numpy(), 16000) == pytest.approx([0.04], abs=0.01)
    silent = sorted(ClipDataset(tmp_path, audio=False), key=lambda s: s["key"])
    assert not silent[0]["has_audio"] and silent[0]["audio"].shape == (1, 6400)
    assert silent[0]["audio"].abs().max() == 0


def test_keys_from_files_are_made_plain(tmp_path, clip_bytes):
    """Keys become file names downstream (token caches, feature files): a key from a JSON or a tar member that
    is not a plain name is made one."""
    (tmp_path / "a.mp4").write_bytes(clip_bytes[0][1])
    (tmp_path / "a.json").write_text(json.dumps({"key": "../../etc/evil"}))
    shard = tmp_path / "shard.tar"
    with tarfile.open(shard, "w") as tar:
        for name, data in (("../my clip!.mp4", clip_bytes[1][1]), ("../my clip!.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    keys = [s["key"] for s in ClipDataset([tmp_path / "a.mp4", shard], audio=False)]
    assert keys == ["etc_evil", "my_clip"]
    with pytest.raises(ValueError, match="letters, digits"):
        DatasetWriter(tmp_path / "w", settings={}).add_sample("../x", clip_bytes[0][1], {}, {})


def test_shards_close_by_size(tmp_path, clip_bytes):
    _write(tmp_path, clip_bytes[:3], max_count=100, max_bytes=min(len(b) for _, b in clip_bytes[:3]))  # each fills one
    assert len(list(tmp_path.glob("clips-*.tar"))) == 3
    assert len(list(ClipDataset(tmp_path, audio=False, size=(24, 12)))) == 3
