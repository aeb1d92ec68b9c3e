"""The token cache on a fake clip source and a hand-written tokenizer: file names, header checks, counters,
windows and every damaged-file path, with the served tokens worked out in the test."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from faceexpr_cli.errors import DataError
from faceexpr_cli.train.data import Batch, ClipRef
from faceexpr_cli.train.token_cache import TokenCache, _clip_stamp, check_token_file, tokenizer_fingerprint


class Tok(torch.nn.Module):
    """Frame t (all pixels 10 t) -> two tokens: m * (1, 2, 3) and m * (1, 2, 3) + 1, m = 10 t / 255."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(len(x))
        m = x.mean(dim=(1, 2, 3))[:, None] * self.w
        return (torch.stack([m, m + 1], dim=1),)


def want_tokens(ts) -> np.ndarray:
    m = np.array([10 * t / 255 for t in ts], np.float32)[:, None] * np.array([1, 2, 3], np.float32)
    return np.stack([m, m + 1], axis=1)


class Source:
    def __init__(self, tmp_path, counts: dict[str, tuple[int, int]]):
        """key -> (frames its record says, frames it decodes to)."""
        self.clips, self.decoded = [], []
        for key, (said, real) in counts.items():
            path = tmp_path / key.replace("/", "_")
            path.write_bytes(b"clip " + key.encode())
            self.clips.append(ClipRef(key, path, "s", said, 25.0))
            self.decoded.append(real)
        self.reads = 0

    def frames(self, index):
        self.reads += 1
        n = self.decoded[index]
        return (np.arange(n, dtype=np.uint8)[:, None, None, None] * 10 * np.ones((1, 4, 4, 3), np.uint8))


def npy(path, arr, version=None):
    with path.open("wb") as f:
        np.lib.format.write_array(f, arr, version=version)
    return path


def test_check_token_file_accepts_exactly_the_run_shape(tmp_path):
    f = npy(tmp_path / "a.npy", np.zeros((5, 2, 3), np.float16))
    assert check_token_file(f, 5, (2, 3)) is None
    assert check_token_file(f, 6, (2, 3)) is None  # fewer rows than the record: the window check decides
    assert check_token_file(f, 4, (2, 3)) == "shape (5, 2, 3), expected (4, 2, 3)"
    assert check_token_file(f, 5, (2, 4)) == "shape (5, 2, 3), expected (5, 2, 4)"
    assert check_token_file(npy(tmp_path / "v2.npy", np.zeros((1, 2, 3), np.float16), (2, 0)), 5, (2, 3)) is None
    empty = npy(tmp_path / "e.npy", np.zeros((0, 2, 3), np.float16))
    assert check_token_file(empty, 5, (2, 3)) == "shape (0, 2, 3), expected (5, 2, 3)"
    flat = npy(tmp_path / "f.npy", np.zeros((5, 6), np.float16))
    assert check_token_file(flat, 5, (2, 3)) == "shape (5, 6), expected (5, 2, 3)"
    fortran = npy(tmp_path / "o.npy", np.asfortranarray(np.zeros((5, 2, 3), np.float16)))
    assert check_token_file(fortran, 5, (2, 3)) == "shape (5, 2, 3), expected (5, 2, 3)"
    wide = npy(tmp_path / "w.npy", np.zeros((5, 2, 3), np.float32))
    assert check_token_file(wide, 5, (2, 3)) == "dtype float32, expected float16"


def test_check_token_file_size_and_header(tmp_path):
    f = npy(tmp_path / "a.npy", np.zeros((5, 2, 3), np.float16))
    data = f.read_bytes()
    header = len(data) - 5 * 2 * 3 * 2
    f.write_bytes(data[:-2])
    assert check_token_file(f, 5, (2, 3)) == f"{len(data) - 2} bytes, its header says {header + 60}"
    f.write_bytes(data + b"\0")
    assert check_token_file(f, 5, (2, 3)) == f"{len(data) + 1} bytes, its header says {len(data)}"
    f.write_bytes(b"garbage header")
    assert check_token_file(f, 5, (2, 3)).startswith("unreadable header (")
    assert check_token_file(tmp_path / "missing.npy", 5, (2, 3)).startswith("unreadable header (")


def test_clip_stamp_follows_the_record_and_the_file(tmp_path):
    path = tmp_path / "c.mp4"
    path.write_bytes(b"1234")
    clip = ClipRef("c", path, "s", 10, 25.0)
    stamp = _clip_stamp(clip)
    assert re.fullmatch(r"[0-9a-f]{8}", stamp) and _clip_stamp(ClipRef("other", path, "x", 10, 25.0)) == stamp
    assert _clip_stamp(ClipRef("c", path, "s", 11, 25.0)) != stamp
    assert _clip_stamp(ClipRef("c", path, "s", 10, 30.0)) != stamp
    path.write_bytes(b"12345")
    assert _clip_stamp(clip) != stamp
    gone = ClipRef("g", tmp_path / "gone.mp4", "s", 10, 25.0)
    assert _clip_stamp(gone) == _clip_stamp(gone)  # a file that cannot be read is stamped (0, 0), not an error


def test_fingerprint_covers_card_args_size_rate_and_weights():
    tok = Tok()
    fp = tokenizer_fingerprint(tok, "dino", {"dim": 3}, 56, None)
    assert re.fullmatch(r"[0-9a-f]{16}", fp) and tokenizer_fingerprint(Tok(), "dino", {"dim": 3}, 56, None) == fp
    others = [tokenizer_fingerprint(tok, "dino2", {"dim": 3}, 56, None),
              tokenizer_fingerprint(tok, "dino", {"dim": 4}, 56, None),
              tokenizer_fingerprint(tok, "dino", {"dim": 3}, 70, None),
              tokenizer_fingerprint(tok, "dino", {"dim": 3}, 56, 25.0)]
    with torch.no_grad():
        tok.w[2] = 4.0
    others.append(tokenizer_fingerprint(tok, "dino", {"dim": 3}, 56, None))
    assert len({fp, *others}) == 6


def test_first_read_writes_fp16_tokens_in_chunks_then_serves_from_memory_and_disk(tmp_path):
    src = Source(tmp_path, {"a/b": (5, 5)})
    tok = Tok()
    cache = TokenCache(tmp_path / "cache", "fp", tok, torch.device("cpu"), chunk=2)
    assert cache.dir == tmp_path / "cache" / "fp" and cache.dir.is_dir()
    assert cache.tokens is None and (cache.hits, cache.misses, cache.rebuilt) == (0, 0, 0)
    arr = cache.clip_tokens(src, 0)
    assert tok.calls == [2, 2, 1] and cache.tokens == (2, 3)
    assert arr.dtype == np.float16 and np.allclose(arr, want_tokens(range(5)), atol=2e-3)
    (file,) = cache.dir.iterdir()
    assert file.name == f"a__b.{_clip_stamp(src.clips[0])}.npy"
    assert (cache.hits, cache.misses) == (0, 1)
    cache.clip_tokens(src, 0)
    assert (cache.hits, cache.misses) == (1, 1) and src.reads == 1
    again = TokenCache(tmp_path / "cache", "fp", Tok(), torch.device("cpu"), tokens=(2, 3))
    assert np.array_equal(again.clip_tokens(src, 0), arr)
    assert (again.hits, again.misses, again.rebuilt) == (1, 0, 0) and again.tokenizer.calls == []
    assert TokenCache(tmp_path / "cache", "fp", tok, torch.device("cpu")).chunk == 16


def test_window_and_batch_tokens_serve_the_right_frames(tmp_path):
    src = Source(tmp_path, {"x": (6, 6), "y": (6, 6)})
    cache = TokenCache(tmp_path / "cache", "fp", Tok(), torch.device("cpu"), tokens=(2, 3))
    part = cache.window(src, 1, 2, 3)
    assert part.shape == (3, 2, 3) and np.allclose(part, want_tokens([2, 3, 4]), atol=2e-3)
    assert np.allclose(cache.window(src, 0, 3, 3), want_tokens([3, 4, 5]), atol=2e-3)  # the last frames exactly
    batch = Batch(np.zeros((2, 2, 4, 4, 3), np.uint8), ["s", "s"], [src.clips[1], src.clips[0]], [4, 0])
    out = cache.batch_tokens(src, batch, 2)
    assert out.dtype == torch.float32 and out.shape == (4, 2, 3)
    assert np.allclose(out.numpy(), want_tokens([4, 5, 0, 1]), atol=2e-3)


def test_a_damaged_file_is_rebuilt_with_a_warning(tmp_path, fx_log):
    src = Source(tmp_path, {"x": (4, 4)})
    cache = TokenCache(tmp_path / "cache", "fp", Tok(), torch.device("cpu"), tokens=(2, 3))
    path = cache._file(src.clips[0])
    npy(path, np.zeros((4, 2, 3), np.float32))
    fx_log()
    arr = cache.clip_tokens(src, 0)
    assert np.allclose(arr, want_tokens(range(4)), atol=2e-3)
    assert (cache.hits, cache.misses, cache.rebuilt) == (1, 1, 1)
    assert fx_log() == (f"token cache {path} is damaged (dtype float32, expected float16); tokenizing the clip "
                        "again")


def test_non_finite_values_in_the_window_are_rebuilt(tmp_path, fx_log):
    src = Source(tmp_path, {"x": (4, 4)})
    cache = TokenCache(tmp_path / "cache", "fp", Tok(), torch.device("cpu"), tokens=(2, 3))
    bad = want_tokens(range(4)).astype(np.float16)
    bad[2, 1, 0] = np.nan
    npy(cache._file(src.clips[0]), bad)
    assert np.allclose(cache.window(src, 0, 0, 2), want_tokens([0, 1]), atol=2e-3)  # the NaN is outside the window
    assert cache.rebuilt == 0
    fx_log()
    assert np.allclose(cache.window(src, 0, 1, 2), want_tokens([1, 2]), atol=2e-3)
    assert cache.rebuilt == 1 and "(non-finite values in frames 1..2)" in fx_log()


def test_a_short_file_is_rebuilt_and_a_short_clip_is_a_data_error(tmp_path, fx_log):
    src = Source(tmp_path, {"x": (5, 5), "short": (5, 3)})
    cache = TokenCache(tmp_path / "cache", "fp", Tok(), torch.device("cpu"), tokens=(2, 3))
    npy(cache._file(src.clips[0]), want_tokens(range(3)).astype(np.float16))
    fx_log()
    assert np.allclose(cache.window(src, 0, 2, 3), want_tokens([2, 3, 4]), atol=2e-3)
    assert "(3 frames, the window needs 5)" in fx_log() and cache.rebuilt == 1
    with pytest.raises(DataError) as info:
        cache.window(src, 1, 1, 3)
    assert info.value.message == f"{src.clips[1].path}: decodes to 3 frames, its record says 5"
    assert info.value.hint == "re-run fx crop on its source, or remove the clip"


def test_a_file_that_is_bad_right_after_writing_is_a_data_error(tmp_path):
    src = Source(tmp_path, {"x": (4, 4)})
    cache = TokenCache(tmp_path / "cache", "fp", Tok(), torch.device("cpu"), tokens=(9, 9))  # not what Tok gives
    with pytest.raises(DataError) as info:
        cache.clip_tokens(src, 0)
    assert info.value.message == (f"token cache {cache._file(src.clips[0])}: cannot be read back after writing it "
                                  "(shape (4, 2, 3), expected (4, 9, 9))")
    assert info.value.hint == "check the disk, or leave out --cache-tokens"
    assert (cache.misses, cache.rebuilt) == (1, 0)  # written once and refused: no second try of a fresh file


def test_a_damaged_file_whose_rebuild_is_still_bad_is_a_data_error_not_a_loop(tmp_path, fx_log):
    src = Source(tmp_path, {"x": (4, 4)})
    cache = TokenCache(tmp_path / "cache", "fp", Tok(), torch.device("cpu"), tokens=(9, 9))  # not what Tok gives
    npy(cache._file(src.clips[0]), np.zeros((1, 1, 1), np.float16))  # damaged: rebuilt, and the rebuild is bad
    fx_log()
    with pytest.raises(DataError, match="cannot be read back after writing it"):
        cache.clip_tokens(src, 0)
    assert cache.rebuilt == 1 and "is damaged" in fx_log()
