"""``--cache-tokens``: what it serves is the tokenizer's own output for the batch's frames, and a damaged cache file
is tokenized again with a warning instead of breaking every later run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from faceexpr_cli.train.runner import run
from faceexpr_cli.train.token_cache import TokenCache, check_token_file


def _spy(monkeypatch) -> list[tuple[list, list[int], int, torch.Tensor]]:
    """Record every batch the runner takes from the cache: clip files, window starts, length, tokens served."""
    served = []
    real = TokenCache.batch_tokens

    def spy(self, source, batch, length):
        out = real(self, source, batch, length)
        served.append(([c.path for c in batch.clips], list(batch.starts), length, out.clone()))
        return out

    monkeypatch.setattr(TokenCache, "batch_tokens", spy)
    return served


def _own_tokens(tokenizer, paths, starts, length) -> torch.Tensor:
    """The tokenizer run in the test on frames decoded in the test: the windows [start, start+length)."""
    from faceexpr_cli.media import read_frames

    frames = np.concatenate([read_frames(p, size=(56, 56))[s:s + length] for p, s in zip(paths, starts, strict=True)])
    with torch.no_grad():
        return tokenizer(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)[0]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.fixture(scope="module")
def cached_run(tmp_path_factory, clip_folder):
    """A 3-step run that fills a token cache (all four clips), and the cache folder."""
    from faceexpr_cli.config.recipes import load_recipe

    root = tmp_path_factory.mktemp("cached")
    recipe = load_recipe("joint-tiny", [f"data.path={clip_folder}", "data.workers=0", "trainer.tensorboard=false",
                                        "trainer.max_steps=3", "data.batch_clips=4"])
    res = run(recipe, root / "run", cache_tokens=root / "cache")
    assert res.cache["misses"] == 4 and res.cache["rebuilt"] == 0
    return root / "run", root / "cache"


def test_served_tokens_are_the_tokenizers_own_for_the_same_frames_and_window(
        cached_run, tiny_recipe, tmp_path, monkeypatch, run_tokenizer):
    first, cache = cached_run
    served = _spy(monkeypatch)
    res = run(tiny_recipe("trainer.max_steps=4"), tmp_path / "b", cache_tokens=cache)
    assert res.cache["misses"] == 0 and len(served) == 4  # every step served from disk
    tokenizer = run_tokenizer(first)
    assert any(s > 0 for _, starts, _, _ in served for s in starts), "a window must start past frame 0"
    for paths, starts, length, got in served:
        want = _own_tokens(tokenizer, paths, starts, length)
        assert got.shape == want.shape == (len(paths) * length, 16, 64)
        err = _max_diff(got, want)
        assert err <= 2e-3 * float(want.abs().max()) + 1e-3, err  # fp16 storage, nothing more
        # the test can tell windows apart: the same clips one frame later are far outside that tolerance
        later = _own_tokens(tokenizer, paths, [s + 1 if s + 1 + length <= 30 else s - 1 for s in starts], length)
        assert _max_diff(later, want) > 20 * err


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    header = len(data) - int(np.prod(np.load(path, mmap_mode="r").shape)) * 2
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "header":
        path.write_bytes(b"\x00garbage!!" + data[10:])
    elif how == "nan-data":  # 0xFFFF is a float16 NaN: right size and header, every value unusable
        path.write_bytes(data[:header] + b"\xff" * (len(data) - header))
    elif how == "other-width":  # a cache of a tokenizer with another width under this name
        np.save(path, np.zeros((30, 16, 32), np.float16))
    elif how == "float32":
        np.save(path, np.zeros((30, 16, 64), np.float32))
    elif how == "padded":
        path.write_bytes(data + b"\x00" * 256)


@pytest.mark.parametrize("how", ["truncate", "header", "nan-data", "other-width", "float32", "padded"])
def test_a_damaged_cache_file_is_rebuilt_with_a_warning(cached_run, tiny_recipe, tmp_path, how, fx_log,
                                                        monkeypatch, run_tokenizer):
    first, pristine = cached_run
    cache = tmp_path / "cache"
    shutil.copytree(pristine, cache)
    files = sorted(cache.glob("*/*.npy"))
    assert len(files) == 4
    for f in files:
        _damage(f, how)
    served = _spy(monkeypatch)
    res = run(tiny_recipe("trainer.max_steps=2", "data.batch_clips=4"), tmp_path / "r", cache_tokens=cache)
    assert res.steps == 2 and res.cache["rebuilt"] == 4, res.cache
    assert all(np.isfinite(r["loss"]) for r in res.rows)
    log = fx_log()
    assert log.count("is damaged") == 4 and "tokenizing the clip again" in log, log
    tokenizer = run_tokenizer(first)
    for paths, starts, length, got in served:
        want = _own_tokens(tokenizer, paths, starts, length)
        assert _max_diff(got, want) <= 2e-3 * float(want.abs().max()) + 1e-3
    for f in files:  # rewritten in place: the next run is served from disk again
        assert check_token_file(f, 30, (16, 64)) is None
        assert np.array_equal(np.load(f), np.load(pristine / f.relative_to(cache)))
    again = run(tiny_recipe("trainer.max_steps=1", "data.batch_clips=4"), tmp_path / "r2", cache_tokens=cache)
    assert again.cache == {"hits": 4, "misses": 0, "rebuilt": 0}
    assert "is damaged" not in fx_log()


def test_a_replaced_clip_is_tokenized_again(cached_run, tiny_recipe, tmp_path, clip_folder):
    """The cache file name carries the clip file's size and time: another clip under the same name is new."""
    _, pristine = cached_run
    data = tmp_path / "clips"
    shutil.copytree(clip_folder, data)
    cache = tmp_path / "cache"
    shutil.copytree(pristine, cache)
    shutil.copy(data / "astronaut" / "clip_01.mp4", data / "astronaut" / "clip_00.mp4")  # new content, same name
    res = run(tiny_recipe(f"data.path={data}", "trainer.max_steps=1", "data.batch_clips=4"), tmp_path / "r",
              cache_tokens=cache)
    assert res.cache["misses"] == 1 and res.cache["hits"] == 3
