"""``--cache-tokens DIR``: the frozen tokenizer's patch tokens, computed once per clip and kept on disk in fp16.

Since the tokenizer never changes during a run, later epochs read ``DIR/<fingerprint>/<clip>.<stamp>.npy``
(memory-mapped, only the needed frames are read) instead of running the ViT. The fingerprint covers the tokenizer's
card, arguments and weights, the frame size and rate, so a cache can never serve tokens from another tokenizer; the
stamp covers the clip file (size, modification time) and its frame count, so a replaced clip is tokenized again.

A damaged cache file (cut short, bytes overwritten, another dtype or shape than this run's tokens, non-finite
values in the frames read) is tokenized again with a warning, never served and never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from faceexpr_cli.console import log
from faceexpr_cli.errors import DataError
from faceexpr_cli.train.data import Batch, ClipRef, FolderClips


def tokenizer_fingerprint(tokenizer: torch.nn.Module, card_name: str, args: dict, size: int,
                          fps: float | None) -> str:
    h = hashlib.sha1(json.dumps({"card": card_name, "args": args, "size": size, "fps": fps},
                                sort_keys=True, default=str).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes()[:4096])
        h.update(str(float(tensor.float().sum())).encode())
    return h.hexdigest()[:16]


def _clip_stamp(clip: ClipRef) -> str:
    try:
        st = clip.path.stat()
        file = (st.st_size, st.st_mtime_ns)
    except OSError:
        file = (0, 0)
    return hashlib.sha1(json.dumps([clip.frames, clip.fps, *file]).encode()).hexdigest()[:8]


def check_token_file(path: Path, rows: int, tokens: tuple[int, int]) -> str | None:
    """Why ``path`` cannot be served as the tokens of a clip of ``rows`` frames (None: it can).

    Reads only the header: dtype float16, C order, shape (1..rows, N, D) with (N, D) = ``tokens``, and a file
    exactly as long as its header says (so a cut or padded file is caught before numpy maps it)."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except (OSError, ValueError, SyntaxError, TypeError) as exc:
        return f"unreadable header ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})"
    if dtype != np.float16:
        return f"dtype {dtype}, expected float16"
    if fortran or len(shape) != 3 or tuple(shape[1:]) != tuple(tokens) or not 1 <= shape[0] <= rows:
        return f"shape {tuple(shape)}, expected ({rows}, {tokens[0]}, {tokens[1]})"
    size, want = path.stat().st_size, offset + int(np.prod(shape)) * 2
    if size != want:
        return f"{size} bytes, its header says {want}"
    return None


class TokenCache:
    def __init__(self, root: str | Path, fingerprint: str, tokenizer: torch.nn.Module, device: torch.device,
                 chunk: int = 16, tokens: tuple[int, int] | None = None):
        """``tokens``: the (N, D) of one frame's tokens in this run; a cached file of another shape is rebuilt."""
        self.dir = Path(root) / fingerprint
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tokenizer, self.device, self.chunk = tokenizer, device, chunk
        self.tokens = tokens
        self.hits = self.misses = self.rebuilt = 0
        self._open: dict[str, np.ndarray] = {}

    def _file(self, clip: ClipRef) -> Path:
        safe = clip.key.replace(os.sep, "__").replace("/", "__")
        return self.dir / f"{safe}.{_clip_stamp(clip)}.npy"

    @torch.no_grad()
    def _write(self, source: FolderClips, index: int, path: Path) -> None:
        frames = source.frames(index)
        out = []
        for i in range(0, len(frames), self.chunk):
            x = torch.from_numpy(frames[i:i + self.chunk]).to(self.device).permute(0, 3, 1, 2).float() / 255
            out.append(self.tokenizer(x)[0].half().cpu().numpy())
        arr = np.concatenate(out)
        if self.tokens is None:
            self.tokens = (int(arr.shape[1]), int(arr.shape[2]))
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)

    def _rebuild(self, source: FolderClips, index: int, path: Path, why: str) -> np.ndarray:
        log.warning("token cache %s is damaged (%s); tokenizing the clip again", path, why)
        self.rebuilt += 1
        self.misses += 1
        self._open.pop(source.clips[index].key, None)
        self._write(source, index, path)
        return self._map(source, index, path, fresh=True)

    def _map(self, source: FolderClips, index: int, path: Path, fresh: bool = False) -> np.ndarray:
        clip = source.clips[index]
        why = check_token_file(path, clip.frames, self.tokens) if self.tokens is not None else None
        if why is None:
            try:
                self._open[clip.key] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                why = f"unreadable ({exc})"
        if why is not None:
            if fresh:  # just written by this process and still bad: the disk, not the cache, is the problem
                raise DataError(f"token cache {path}: cannot be read back after writing it ({why})",
                                "check the disk, or leave out --cache-tokens")
            return self._rebuild(source, index, path, why)
        return self._open[clip.key]

    def clip_tokens(self, source: FolderClips, index: int) -> np.ndarray:
        clip = source.clips[index]
        if clip.key in self._open:
            self.hits += 1
            return self._open[clip.key]
        path = self._file(clip)
        if not path.exists():
            self.misses += 1
            self._write(source, index, path)
            return self._map(source, index, path, fresh=True)
        self.hits += 1
        return self._map(source, index, path)

    def window(self, source: FolderClips, index: int, start: int, length: int) -> np.ndarray:
        """Tokens of frames start .. start+length-1 of clip ``index``, checked finite and complete."""
        part = np.asarray(self.clip_tokens(source, index)[start:start + length])
        if len(part) == length and np.isfinite(part).all():
            return part
        clip = source.clips[index]
        why = (f"{len(self.clip_tokens(source, index))} frames, the window needs {start + length}"
               if len(part) < length else f"non-finite values in frames {start}..{start + length - 1}")
        part = np.asarray(self._rebuild(source, index, self._file(clip), why)[start:start + length])
        if len(part) < length:
            raise DataError(f"{clip.path}: decodes to {len(self.clip_tokens(source, index))} frames, its record "
                            f"says {clip.frames}", "re-run fx crop on its source, or remove the clip")
        return part

    def batch_tokens(self, source: FolderClips, batch: Batch, length: int) -> torch.Tensor:
        """(B*T, N, D) float32 tokens for a batch drawn from ``source``."""
        index = {c.key: i for i, c in enumerate(source.clips)}
        parts = [self.window(source, index[c.key], s, length)
                 for c, s in zip(batch.clips, batch.starts, strict=True)]
        return torch.from_numpy(np.concatenate(parts)).to(self.device).float()
