"""``--cache-tokens DIR``: the frozen tokenizer's patch tokens, computed once per clip and kept on disk in fp16.

Since the tokenizer never changes during a run, later epochs read ``DIR/<fingerprint>/<clip>.npy`` (memory-mapped,
only the needed frames are read) instead of running the ViT. The fingerprint covers the tokenizer's card,
arguments and weights, the frame size and rate, so a cache can never serve tokens from another tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from faceexpr_cli.train.data import Batch, FolderClips


def tokenizer_fingerprint(tokenizer: torch.nn.Module, card_name: str, args: dict, size: int,
                          fps: float | None) -> str:
    h = hashlib.sha1(json.dumps({"card": card_name, "args": args, "size": size, "fps": fps},
                                sort_keys=True, default=str).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes()[:4096])
        h.update(str(float(tensor.float().sum())).encode())
    return h.hexdigest()[:16]


class TokenCache:
    def __init__(self, root: str | Path, fingerprint: str, tokenizer: torch.nn.Module, device: torch.device,
                 chunk: int = 16):
        self.dir = Path(root) / fingerprint
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tokenizer, self.device, self.chunk = tokenizer, device, chunk
        self.hits = self.misses = 0
        self._open: dict[str, np.ndarray] = {}

    def _file(self, key: str) -> Path:
        safe = key.replace(os.sep, "__").replace("/", "__")
        return self.dir / f"{safe}.npy"

    @torch.no_grad()
    def clip_tokens(self, source: FolderClips, index: int) -> np.ndarray:
        clip = source.clips[index]
        if clip.key in self._open:
            self.hits += 1
            return self._open[clip.key]
        path = self._file(clip.key)
        if not path.exists():
            self.misses += 1
            frames = source.frames(index)
            out = []
            for i in range(0, len(frames), self.chunk):
                x = torch.from_numpy(frames[i:i + self.chunk]).to(self.device).permute(0, 3, 1, 2).float() / 255
                out.append(self.tokenizer(x)[0].half().cpu().numpy())
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, np.concatenate(out))
            tmp.replace(path)
        else:
            self.hits += 1
        self._open[clip.key] = np.load(path, mmap_mode="r")
        return self._open[clip.key]

    def batch_tokens(self, source: FolderClips, batch: Batch, length: int) -> torch.Tensor:
        """(B*T, N, D) float32 tokens for a batch drawn from ``source``."""
        index = {c.key: i for i, c in enumerate(source.clips)}
        parts = [self.clip_tokens(source, index[c.key])[s:s + length] for c, s in zip(batch.clips, batch.starts, strict=False)]
        arr = np.concatenate([np.asarray(p) for p in parts])
        return torch.from_numpy(arr).to(self.device).float()
